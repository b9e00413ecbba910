"""python -m geoest.evaluate on a tiny trained model: the published results format, the JSON of
tools/score_predictions.py, per-scene rows, Table 6 and the plot; ISN routing end to end."""
import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers
from geoest.geo.scoring import read_results_csv
from geoest.inference import HIERARCHY, crop_probabilities
from geoest.inference.core import Locator
from geoest.inference.batches import image_batches
from geoest.inference.evaluation import PARTIAL, evaluate
from geoest.inference.methods import load_methods, model_method
from geoest.inference.scene_scores import score_file

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
N_TEST = 20


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Partitionings, a tiny model trained a few steps, and a test set as images + meta CSV and
    as TFRecords."""
    import keras
    import tensorflow as tf

    from geoest.data import records

    root = tmp_path_factory.mktemp("world")
    parts = helpers.partitionings(1500)
    rng = np.random.default_rng(7)
    lat, lon = helpers.clustered_points(200, seed=11)
    keep = parts[-1].assign(lat, lon) >= 0
    lat, lon = lat[keep][:N_TEST], lon[keep][:N_TEST]
    probs3 = rng.dirichlet(np.ones(3), size=N_TEST).astype(np.float32)
    images_dir = root / "images"
    (images_dir / "sub").mkdir(parents=True)
    ids, encoded = [], []
    for i in range(N_TEST):
        ids.append(f"sub/{i:03d}.jpg" if i % 2 else f"{i:03d}.jpg")
        h, w = (40, 56) if i % 3 else (56, 40)
        encoded.append(helpers.image_bytes(h, w, seed=i))
        (images_dir / ids[-1]).write_bytes(encoded[-1])
    meta_csv = root / "meta.csv"
    with open(meta_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["IMG_ID", "AUTHOR", "LAT", "LON", "S3_Label", "S16_Label", "S365_Label",
                         "Prob_indoor", "Prob_natural", "Prob_urban"])
        for i in range(N_TEST):
            writer.writerow([ids[i], "someone", lat[i], lon[i], int(probs3[i].argmax()), 0, 0, *probs3[i]])
    with tf.io.TFRecordWriter(str(root / "test-00000-of-00001.tfrecord")) as writer:
        for i in range(N_TEST):
            writer.write(records.encode_example(encoded[i], ids[i], float(lat[i]), float(lon[i]),
                                                probs3=probs3[i]))

    from geoest.models import build_model
    model = build_model(parts, backbone="tiny", image_size=SIZE)
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss={p.name: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for p in parts})
    x = rng.integers(0, 256, (N_TEST, SIZE, SIZE, 3), dtype=np.uint8)
    model.fit(x, {p.name: p.assign(lat, lon) for p in parts}, epochs=2, batch_size=8, verbose=0)
    model_dir = root / "base_M"
    helpers.save_model_dir(model, parts, model_dir)
    return {"root": root, "parts": parts, "ids": ids, "lat": lat, "lon": lon, "probs3": probs3,
            "images_dir": images_dir, "meta_csv": meta_csv, "model_dir": model_dir,
            "records": root / "test-*.tfrecord"}


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{key}").items()}
    return {prefix: tree}


def _read_results(path):
    """(header, rows [img_id, gt_lat, predicted_lat, gt_long, predicted_long]) of a results file."""
    results = read_results_csv(path)
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    return header, [[i, *values] for i, *values in zip(results.ids, results.gt_lat_deg, results.pred_lat_deg,
                                                         results.gt_lon_deg, results.pred_lon_deg)]


def test_evaluate_writes_published_format_and_score_predictions_agrees(world, tmp_path):
    out = tmp_path / "eval"
    result = _run("-m", "geoest.evaluate", f"--model_dir={world['model_dir']}",
                  f"--test_records={world['records']}", f"--output_dir={out}", "--batch_size=8",
                  "--reference=im2gps3k")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Street 1 km" in result.stdout and "base_M (f*)" in result.stdout and "ISNs(M, f*, S3)" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    outputs = [p.name for p in world["parts"]] + [HIERARCHY]
    assert sorted(summary["base_M"]) == sorted(outputs)
    for output in outputs:
        results = out / "base_M" / f"results_{output}.csv"
        header, rows = _read_results(results)
        assert header == ["img_id", "gt_lat", "predicted_lat", "gt_long", "predicted_long", "great_circle_distance"]
        assert sorted(r[0] for r in rows) == sorted(world["ids"])
        by_id = {r[0]: r for r in rows}
        for i, image_id in enumerate(world["ids"]):   # ground truth carried through (float32 records)
            np.testing.assert_allclose([float(by_id[image_id][1]), float(by_id[image_id][3])],
                                       [world["lat"][i], world["lon"][i]], atol=1e-4)
        if output == HIERARCHY:   # the tool itself once; its library function for the other files
            scored = _run(REPO / "tools" / "score_predictions.py", f"--predictions_csv={results}",
                          f"--meta_csv={world['meta_csv']}")
            assert scored.returncode == 0, scored.stderr[-2000:]
            scores = json.loads(scored.stdout)
        else:
            scores = score_file(results, world["meta_csv"])
        assert _flat(scores) == pytest.approx(_flat(summary["base_M"][output]), rel=1e-9)
        assert summary["base_M"][output]["all"]["count"] == N_TEST
        stated = read_results_csv(results).summary   # the published summary block, checked against the rows
        assert stated["city acc (25km)"] == round(summary["base_M"][output]["all"]["accuracy"]["25"], 6)
        assert sum(summary["base_M"][output][c]["count"] for c in ("indoor", "natural", "urban")) == N_TEST
    table = (out / "table6.txt").read_text()
    assert "urban (" in table and "Continent 2,500 km" in table
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / PARTIAL).exists()


def test_predictions_are_the_models_class2gps(world, tmp_path):
    """The rows equal an independent run of the model on the same crops: three-crop mean,
    hierarchy, Class2GPS of the mean coordinate."""
    from geoest.data import pipeline
    from geoest.inference.modeldir import load_geo_model

    geo_model = load_geo_model(world["model_dir"])
    batches = list(pipeline.eval_dataset(str(world["records"]), 8, image_size=SIZE).as_numpy_iterator())
    summary = evaluate([model_method("m", geo_model)], iter(batches), tmp_path)
    assert summary["m"]["hierarchy"]["all"]["count"] == N_TEST
    locator = Locator(world["parts"])
    fine = world["parts"][-1]
    _, rows = _read_results(tmp_path / "m" / "results_hierarchy.csv")
    got = {r[0]: (float(r[2]), float(r[4])) for r in rows}
    for batch in batches:
        probs = {k: v.numpy() for k, v in crop_probabilities(geo_model.model, batch["crops"]).items()}
        joint = probs[fine.name].astype(np.float64)
        parents = locator.hierarchy.parents
        for k, p in enumerate(locator.partitionings[:-1]):
            joint = joint * probs[p.name][:, parents[:, k]]
        for image_id, cls in zip(batch["id"], joint.argmax(axis=1)):
            np.testing.assert_allclose(got[image_id.decode()], fine.centers[cls], rtol=0, atol=1e-6)  # 6 decimals


def test_centers_are_chosen_per_method(world, tmp_path):
    """base-vgg and base-vgg_c of Table 6 as two rows of one run: the same model, one located at its
    cells' mean coordinates (§3.4), the other at their geometric centres."""
    methods, _ = load_methods({"m": world["model_dir"], "m_c": world["model_dir"]}, model_centers={"m_c": "geometric"})
    summary = evaluate(methods, image_batches(world["images_dir"], world["meta_csv"], 8, SIZE), tmp_path)
    fine = world["parts"][-1]
    assert set(summary) == {"m", "m_c"}
    output = fine.name
    _, mean_rows = _read_results(tmp_path / "m" / f"results_{output}.csv")
    _, centre_rows = _read_results(tmp_path / "m_c" / f"results_{output}.csv")
    for rows, points in ((mean_rows, fine.centers), (centre_rows, fine.geometric_centers())):
        for row in rows:
            lat, lon = float(row[2]), float(row[4])
            assert np.abs(points - [lat, lon]).max(axis=1).min() < 1e-5     # one of its cells' points
    assert [r[0] for r in mean_rows] == [r[0] for r in centre_rows]
    assert any(a[2:5] != b[2:5] for a, b in zip(mean_rows, centre_rows))


def test_isn_ensemble_routes_by_meta_scene(world, tmp_path):
    """ISNs(M, f*, S3) from images + meta CSV (--isn_dirs, in-process): each image is located by
    its concept's ISN."""
    parts = world["parts"]
    sizes = {p.name: len(p) for p in parts}
    winners = {}
    for k, concept in enumerate(("indoor", "natural", "urban")):
        # ISN k always predicts one cell per partitioning, chosen to be consistent with the hierarchy
        fine_class = (7 * k + 1) % len(parts[-1])
        from geoest.geo import Hierarchy
        parents = Hierarchy(parts).parents[fine_class]
        winners[concept] = {p.name: int(parents[i]) for i, p in enumerate(parts)}
        model = helpers.constant_model(sizes, winners[concept], image_size=SIZE)
        helpers.save_model_dir(model, parts, tmp_path / f"isn_{concept}")
    isn_dirs = {c: tmp_path / f"isn_{c}" for c in ("indoor", "natural", "urban")}
    methods, image_size = load_methods(isn_dirs=isn_dirs)   # what --isn_dirs does, in-process
    assert image_size == SIZE and [m.name for m in methods] == ["ISNs"]
    out = tmp_path / "eval"
    evaluate(methods, image_batches(world["images_dir"], world["meta_csv"], 8, SIZE), out)
    summary = json.loads((out / "summary.json").read_text())
    concepts = world["probs3"].argmax(axis=1)
    assert summary["ISNs"]["routed_images"] == {c: int((concepts == k).sum())
                                                for k, c in enumerate(("indoor", "natural", "urban"))}
    _, rows = _read_results(out / "ISNs" / "results_hierarchy.csv")
    got = {r[0]: (float(r[2]), float(r[4])) for r in rows}
    fine = parts[-1]
    for i, image_id in enumerate(world["ids"]):
        concept = ("indoor", "natural", "urban")[concepts[i]]
        np.testing.assert_allclose(got[image_id], fine.centers[winners[concept][fine.name]], rtol=0, atol=1e-6)


def test_evaluate_resumes_from_partial_results(world, tmp_path):
    from geoest.data import pipeline
    from geoest.inference.modeldir import load_geo_model

    geo_model = load_geo_model(world["model_dir"])
    batches = list(pipeline.eval_dataset(str(world["records"]), 8, image_size=SIZE).as_numpy_iterator())
    calls = []
    method = model_method("m", geo_model)
    counting = model_method("m", geo_model)
    counting.probabilities = lambda batch: calls.append(len(batch["id"])) or method.probabilities(batch)

    def interrupted():
        yield batches[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate([counting], interrupted(), tmp_path, save_every=1)
    assert (tmp_path / PARTIAL).exists()
    calls.clear()
    resumed = evaluate([counting], iter(batches), tmp_path)
    assert sum(calls) == N_TEST - len(batches[0]["id"])   # the first batch is not run again
    fresh = evaluate([method], iter(batches), tmp_path / "fresh")
    assert resumed == fresh


def test_evaluate_reports_bad_input(tmp_path):
    result = _run("-m", "geoest.evaluate", f"--model_dir={tmp_path / 'nowhere'}",
                  f"--test_records={tmp_path / '*.tfrecord'}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0 and "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_isn_ensemble_routes_by_an_mtn_scene_head(world, tmp_path):
    """--scene_model=<MTN dir>: the MTN's scene head, averaged over the crops, picks the ISN."""
    from geoest.data import pipeline

    parts = world["parts"]
    sizes = {p.name: len(p) for p in parts}
    for k, concept in enumerate(("indoor", "natural", "urban")):
        helpers.save_model_dir(helpers.constant_model(sizes, {p.name: k for p in parts}, image_size=SIZE), parts,
                        tmp_path / f"isn_{concept}")
    mtn = helpers.tiny_model(sizes, image_size=SIZE, scene_classes=3, seed=3)
    helpers.save_model_dir(mtn, parts, tmp_path / "mtn")
    (method,), _ = load_methods(isn_dirs={c: tmp_path / f"isn_{c}" for c in ("indoor", "natural", "urban")},
                                scene_model=str(tmp_path / "mtn"))
    batches = list(pipeline.eval_dataset(str(world["records"]), 8, image_size=SIZE).as_numpy_iterator())
    expected = np.concatenate([crop_probabilities(mtn, b["crops"])["scene"].numpy().argmax(axis=1) for b in batches])
    assert len(set(expected)) > 1   # the MTN does not send everything to one ISN
    summary = evaluate([method], iter(batches), tmp_path / "eval")
    assert summary["ISNs"]["routed_images"] == {c: int((expected == k).sum())
                                                for k, c in enumerate(("indoor", "natural", "urban"))}


def test_a_softmax_scene_classifier_routes_by_the_readme_command_line(world, tmp_path, places365_dir):
    """A stand-in Places365 classifier ending in a softmax, 99 % sure of /b/badlands (natural), sends
    every photo to the natural ISN: its probabilities are used as they are (no second softmax, which
    would give S3 ~ [0.43, 0.18, 0.39] and route to the indoor ISN)."""
    import keras

    from geoest.scene.places365 import load_default_hierarchy

    parts = world["parts"]
    sizes = {p.name: len(p) for p in parts}
    for k, concept in enumerate(("indoor", "natural", "urban")):
        helpers.save_model_dir(helpers.constant_model(sizes, {p.name: k for p in parts}, image_size=SIZE), parts,
                               tmp_path / f"isn_{concept}")
    hierarchy = load_default_hierarchy(places365_dir)
    natural = hierarchy.categories.index("/b/badlands")
    assert hierarchy.s3_matrix[natural].tolist() == [0, 1, 0]
    bias = np.zeros(365, np.float32)
    bias[natural] = np.log(0.99 * 364 / 0.01)          # softmax: 0.99 on badlands, 0.01 spread
    images = keras.Input((SIZE, SIZE, 3))
    probs = keras.layers.Dense(365, activation="softmax", kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(bias), name="predictions")(
        keras.layers.GlobalAveragePooling2D()(images))
    classifier = tmp_path / "scene_classifier.keras"
    keras.Model(images, probs).save(classifier)

    out = tmp_path / "eval"
    isn_dirs = ",".join(f"{c}={tmp_path / f'isn_{c}'}" for c in ("indoor", "natural", "urban"))
    result = _run("-m", "geoest.evaluate", f"--isn_dirs={isn_dirs}", f"--model_dir={world['model_dir']}",
                  f"--images_dir={world['images_dir']}", f"--meta_csv={world['meta_csv']}", f"--output_dir={out}",
                  f"--scene_model={classifier}", "--scene_preprocess=caffe", f"--places365_dir={places365_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ISNs"]["routed_images"] == {"indoor": 0, "natural": N_TEST, "urban": 0}


def test_an_mtn_is_scored_on_its_scene_labels(world, tmp_path):
    """An MTN(S16) model: scene top-1 accuracy at S16 against the meta CSV's S16_Label (all 0 here)."""
    parts = world["parts"]
    mtn = helpers.tiny_model({p.name: len(p) for p in parts}, image_size=SIZE, scene_classes=16, seed=4)
    helpers.save_model_dir(mtn, parts, tmp_path / "mtn_s16")
    methods, _ = load_methods({"mtn_s16": tmp_path / "mtn_s16"})
    batches = list(image_batches(world["images_dir"], world["meta_csv"], 8, SIZE))
    assert all((b["scene_labels"] == [[int(np.argmax(p)), 0, 0] for p in b["probs3"]]).all() for b in batches)
    summary = evaluate(methods, iter(batches), tmp_path / "eval")
    predicted = np.concatenate([crop_probabilities(mtn, b["crops"])["scene"].numpy().argmax(axis=1) for b in batches])
    assert summary["mtn_s16"]["scene_accuracy"] == {"level": "S16", "count": N_TEST,
                                                    "top1": pytest.approx(float(np.mean(predicted == 0)))}
    assert "mtn_s16 scene top-1 (S16" in (tmp_path / "eval" / "table6.txt").read_text()
