"""Validation during training is §3.4 as evaluation does it: the trainer's validation callback and
`python -m geoest.evaluate` give the same accuracies, per head and for f*, on the same records."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
N_PHOTOS = 22


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three partitionings, an MTN(M, S3) with the tiny backbone and sharpened heads, and TFRecords
    of photos of both orientations (three different crops each), some in no cell."""
    import tensorflow as tf

    from geoest.data import records
    from geoest.models import build_model

    root = tmp_path_factory.mktemp("validation")
    parts = helpers.partitionings(1500)
    lat, lon = helpers.clustered_points(N_PHOTOS - 1, seed=5)
    lat, lon = np.append(lat, -60.0), np.append(lon, -120.0)   # the Southern Ocean: in no cell
    assert parts[-1].assign(lat[-1:], lon[-1:])[0] < 0
    rng = np.random.default_rng(2)
    with tf.io.TFRecordWriter(str(root / "val-00000-of-00001.tfrecord")) as writer:
        for i in range(N_PHOTOS):
            height, width = (40, 64) if i % 2 else (64, 40)
            writer.write(records.encode_example(
                helpers.image_bytes(height, width, seed=i), f"{i:03d}.jpg", float(lat[i]), float(lon[i]),
                probs3=rng.dirichlet(np.ones(3)).astype(np.float32), scene_labels=[i % 3 if i % 4 else -1, -1, -1]))
    model = build_model(parts, backbone="tiny", image_size=SIZE, scene_classes=3)
    weights = np.random.default_rng(0)
    for name in [p.name for p in parts] + ["scene"]:   # well-separated top classes
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel * 20, weights.normal(size=bias.shape) * 3])
    model_dir = root / "mtn_s3"
    helpers.save_model_dir(model, parts, model_dir)
    return {"parts": parts, "model": model, "model_dir": model_dir, "records": str(root / "val-*.tfrecord")}


def test_validation_accuracies_are_evaluations(world, tmp_path):
    import tensorflow as tf

    from geoest.geo import THRESHOLDS_KM, Hierarchy
    from geoest.geo.hierarchy import HIERARCHY
    from geoest.inference import crop_probabilities
    from geoest.training.callbacks import GeoValidation
    from geoest.training.inputs import tfrecord_inputs

    parts = world["parts"]
    heads = [p.name for p in parts]
    inputs = tfrecord_inputs(parts, 8, SIZE, "S3", train_files=world["records"], validation_files=world["records"])
    callback = GeoValidation(inputs.validation, parts, Hierarchy(parts), tf.distribute.get_strategy(),
                             {**{name: 1.0 / 3 for name in heads}, "scene": 1.0}, str(tmp_path / "best.keras"))
    callback.set_model(world["model"])
    logs = callback.evaluate()

    out = tmp_path / "eval"
    result = subprocess.run([sys.executable, "-m", "geoest.evaluate", f"--model_dir={world['model_dir']}",
                             f"--test_records={world['records']}", f"--output_dir={out}", "--batch_size=8"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())["mtn_s3"]
    for output in heads + [HIERARCHY]:
        assert summary[output]["all"]["count"] == N_PHOTOS
        evaluated = {r: summary[output]["all"]["accuracy"][str(r)] for r in THRESHOLDS_KM}
        assert {r: logs[f"val_{output}_acc_{r}km"] for r in THRESHOLDS_KM} == evaluated, output
    scene = summary["scene_accuracy"]
    assert scene["level"] == "S3" and logs["val_scene_top1"] == scene["top1"]
    # Not a degenerate case: the heads' answers differ in quality.
    assert 0 < logs[f"val_{HIERARCHY}_acc_2500km"] < 1
    assert len({logs[f"val_{name}_acc_2500km"] for name in heads + [HIERARCHY]}) > 1

    # val_loss: the NLL of the true class under the crop-mean probabilities (label -1 adds 0).
    batches = list(inputs.validation.as_numpy_iterator())
    nll = {name: [] for name in heads + ["scene"]}
    for crops, targets in batches:
        probs = {k: v.numpy() for k, v in crop_probabilities(world["model"], crops).items()}
        for name in nll:
            label = targets[name]
            p_true = probs[name][np.arange(len(label)), np.maximum(label, 0)]
            nll[name].append(np.where(label >= 0, -np.log(p_true), 0.0))
    expected = sum(np.mean(np.concatenate(v)) / (3 if k in heads else 1) for k, v in nll.items())
    assert logs["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert np.concatenate([t["fine"] for _, t in batches]).min() == -1   # the photo in no cell is kept
