"""§4 training: learning, resume, fine-tuning and the errors of the trainer."""
import json
import os
import subprocess
import sys

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from geoest.errors import InputError
from geoest.geo import Partitioning
from geoest.training import train
from geoest.training.config import parse_gin

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _points(n_per_city=300, seed=0):
    rng = np.random.default_rng(seed)
    cities = np.array([[48.85, 2.35], [40.71, -74.0], [35.68, 139.7], [-33.9, 151.2]])
    centre = cities[rng.integers(0, len(cities), n_per_city * len(cities))]
    return centre[:, 0] + rng.normal(0, 1.5, len(centre)), centre[:, 1] + rng.normal(0, 1.5, len(centre))


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """coarse.csv and fine.csv from the same photos and tau_min (a hierarchy), as in §3.1."""
    directory = tmp_path_factory.mktemp("cells")
    lat, lon = _points()
    for name, tau_max in (("coarse", 300), ("fine", 80)):
        Partitioning.build(lat, lon, tau_min=5, tau_max=tau_max, name=name).to_csv(directory / f"{name}.csv")
    return directory


def _configure(cells, *params, files=("coarse", "fine")):
    gin.clear_config()
    parse_gin([], [
        f"train.partitionings = {[str(cells / f'{f}.csv') for f in files]!r}",
        "train.inputs = @synthetic_inputs", "synthetic_inputs.num_images = 64",
        "synthetic_inputs.num_validation = 16", "build_model.backbone = 'tiny'", "train.image_size = 32",
        "train.batch_size = 8", "train.steps_per_epoch = 4", "train.epochs = 1", *params])


class Record(keras.callbacks.Callback):
    """Step at the start, epoch losses, and an optional interruption after step `stop_at`."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at, self.losses, self.start_step, self.weights_at_stop = stop_at, [], None, None

    def on_train_begin(self, logs=None):
        if self.start_step is None:
            self.start_step = int(self.model.optimizer.iterations.numpy())
            self.weights_at_start = [np.array(w) for w in self.model.get_weights()]

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(logs["loss"])

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_at is not None and int(self.model.optimizer.iterations.numpy()) == self.stop_at:
            self.weights_at_stop = [np.array(w) for w in self.model.get_weights()]
            raise KeyboardInterrupt("interrupted by the test")


def test_a_few_steps_lower_the_loss(cells, tmp_path):
    _configure(cells, "train.epochs = 4", "make_optimizer.learning_rate = 0.05")
    record = Record()
    train(str(tmp_path / "run"), callbacks=[record])
    assert record.losses[-1] < record.losses[0] - 0.1
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert {"val_loss", "val_fine_top1", "val_hierarchy_acc_2500km", "val_coarse_acc_25km"} <= set(best)
    assert (tmp_path / "run" / "best.keras").is_file()
    assert sorted(os.listdir(tmp_path / "run" / "partitionings")) == ["coarse.csv", "fine.csv"]


def test_mixed_precision_xla_and_steps_per_execution(cells, tmp_path):
    _configure(cells, "train.mixed_precision = 'mixed_float16'", "train.jit_compile = True",
               "train.steps_per_execution = 2", "train.checkpoint_every_n_steps = 2")
    record = Record()
    model = train(str(tmp_path / "run"), callbacks=[record])
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("tiny_conv1").compute_dtype == "float16"
    assert int(model.optimizer.iterations.numpy()) == 4 and np.isfinite(record.losses[-1])
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-4")
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards


def test_interrupted_run_resumes_with_its_step_counter(cells, tmp_path):
    model_dir = str(tmp_path / "run")
    _configure(cells, "train.epochs = 2", "train.steps_per_epoch = 3", "train.checkpoint_every_n_steps = 2")
    stopped = Record(stop_at=5)
    with pytest.raises(KeyboardInterrupt):
        train(model_dir, callbacks=[stopped])
    # Saved at step 2, at the end of epoch 1 (step 3) and at step 5 (two steps later).
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-5")
    resumed = Record()
    model = train(model_dir, callbacks=[resumed])
    assert resumed.start_step == 5
    for before, after in zip(stopped.weights_at_stop, resumed.weights_at_start):
        np.testing.assert_array_equal(before, after)
    assert int(model.optimizer.iterations.numpy()) == 6  # one step left of epoch 2
    again = Record()
    train(model_dir, callbacks=[again])
    assert again.start_step is None  # nothing left to train: fit is not called


def test_model_dir_of_another_variant_or_partitionings_is_refused(cells, tmp_path):
    model_dir = str(tmp_path / "run")
    _configure(cells, "train.epochs = 0")
    train(model_dir, variant=["base_M"])
    with pytest.raises(InputError, match="different run"):
        train(model_dir, variant=["isn_urban"])
    _configure(cells, "train.epochs = 0", files=("fine",))
    with pytest.raises(InputError, match="coarse"):
        train(model_dir, variant=["base_M"])


def test_other_cells_under_the_same_file_name_are_refused(cells, tmp_path):
    _configure(cells, "train.epochs = 0", files=("fine",))
    train(str(tmp_path / "run"))
    lat, lon = _points(seed=1)
    other = tmp_path / "other"
    other.mkdir()
    Partitioning.build(lat, lon, tau_min=5, tau_max=80, name="fine").to_csv(other / "fine.csv")
    _configure(other, "train.epochs = 0", files=("fine",))
    with pytest.raises(InputError, match="not the one this model_dir was trained with"):
        train(str(tmp_path / "run"))


def test_fine_tuning_starts_from_the_given_model(cells, tmp_path):
    _configure(cells, "train.steps_per_epoch = 2")
    train(str(tmp_path / "base"))
    base = keras.saving.load_model(tmp_path / "base" / "best.keras", compile=False)
    _configure(cells, "train.epochs = 0", f"train.init_from = '{tmp_path / 'base'}'", "train.scene_level = 'S3'")
    tuned = train(str(tmp_path / "mtn"))
    np.testing.assert_array_equal(np.asarray(tuned.get_layer("fine").kernel), np.asarray(base.get_layer("fine").kernel))
    assert tuned.get_layer("scene").kernel.shape == (32, 3)  # a new head


def test_fine_tuning_from_other_partitionings_is_refused(cells, tmp_path):
    _configure(cells, "train.steps_per_epoch = 1")
    train(str(tmp_path / "base"))
    lat, lon = _points(seed=1)
    other = tmp_path / "other"
    other.mkdir()
    Partitioning.build(lat, lon, tau_min=5, tau_max=40, name="fine").to_csv(other / "fine.csv")
    _configure(other, "train.epochs = 0", f"train.init_from = '{tmp_path / 'base' / 'best.keras'}'", files=("fine",))
    with pytest.raises(InputError, match="do not match"):
        train(str(tmp_path / "tuned"))


def _write_records(path, n, probs3):
    from PIL import Image
    import io

    from geoest.data import records

    lat, lon = _points(n_per_city=n // 4, seed=2)
    rng = np.random.default_rng(3)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(len(lat)):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buffer, format="JPEG")
            writer.write(records.encode_example(buffer.getvalue(), f"img{i}", float(lat[i]), float(lon[i]),
                                                probs3=probs3))


@pytest.mark.slow
def test_trains_from_tfrecords_and_refuses_an_empty_isn_set(cells, tmp_path):
    _write_records(tmp_path / "train.tfrecord", 24, probs3=[0.8, 0.1, 0.1])
    _write_records(tmp_path / "val.tfrecord", 8, probs3=[0.8, 0.1, 0.1])
    data = ["train.inputs = @tfrecord_inputs", f"tfrecord_inputs.train_files = '{tmp_path / 'train.tfrecord'}'",
            f"tfrecord_inputs.validation_files = '{tmp_path / 'val.tfrecord'}'", "train_dataset.shuffle_buffer = 8"]
    _configure(cells, *data, "train.steps_per_epoch = None", "train.scene_level = 'S3'")  # an MTN(M, S3)
    train(str(tmp_path / "run"))
    counted = json.loads((tmp_path / "run" / "train_images.json").read_text())["train_images"]
    assert 0 < counted <= 24  # photos in no cell are dropped by the pipeline
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["step"] == counted // 8
    # every validation photo is "indoor" (probs3 0.8, 0.1, 0.1): top-1 is the share of photos whose
    # crop-mean scene prediction is indoor, a multiple of 1 / (validation photos)
    top1 = best["val_scene_top1"]
    assert 0.0 <= top1 <= 1.0 and abs(top1 * 24 - round(top1 * 24)) < 1e-6
    _configure(cells, *data, "train_dataset.concept = 'urban'")  # urban 0.1 <= tau_S 0.3 everywhere
    with pytest.raises(InputError, match="zero images"):
        train(str(tmp_path / "isn"))


def _main(*args):
    return subprocess.run([sys.executable, "-m", "geoest.train", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_main_runs_smoke_and_reports_bad_bindings(cells, tmp_path):
    partitionings = f"train.partitionings=['{cells / 'coarse.csv'}', '{cells / 'fine.csv'}']"
    done = _main("--gin_file=gin/base_M.gin", "--gin_file=smoke.gin", f"--gin_param={partitionings}",
                 f"--model_dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "best.keras").is_file() and (tmp_path / "run" / "operative_config.gin").is_file()
    assert "build_model.backbone = 'tiny'" in (tmp_path / "run" / "operative_config.gin").read_text()
    bad = _main("--gin_file=base_M.gin", "--gin_param=train.epohcs=3", f"--model_dir={tmp_path / 'bad'}")
    assert bad.returncode != 0 and "epohcs" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_distance_aware_targets_beside_one_hot(cells, tmp_path, capsys):
    """The same data, seeds and steps with one-hot and with distance-aware targets (PIGEON); the
    Table-6 row of each (f* on the validation photos) is printed side by side."""
    from geoest.inference.report import table6

    rows = []
    for label, params in (("one-hot", []), ("distance-aware", ["make_losses.distance_tau_km = [1000, 200]"])):
        _configure(cells, "train.epochs = 6", "synthetic_inputs.num_images = 256",
                   "synthetic_inputs.num_validation = 64", "train.steps_per_epoch = 16",
                   "train.monitor = 'val_hierarchy_acc_750km'", *params)
        keras.utils.set_random_seed(0)
        model = train(str(tmp_path / label))
        best = json.load(open(tmp_path / label / "best.json"))
        accuracy = {str(t): best[f"val_hierarchy_acc_{t}km"] for t in (1, 25, 200, 750, 2500)}
        rows.append((f"{label} (f*)", {"count": 64, "accuracy": accuracy, "median_km": float("nan")}))
        rows[-1][1]["weights"] = np.concatenate([w.ravel() for w in model.get_weights()])
    with capsys.disabled():
        print("\n" + table6(rows))
    assert not np.allclose(rows[0][1]["weights"], rows[1][1]["weights"])   # the targets changed training
    for _, summary in rows:
        assert all(0 <= v <= 1 for v in summary["accuracy"].values())
        assert summary["accuracy"]["2500"] >= summary["accuracy"]["25"]


def test_offline_the_paper_variant_stops_with_one_imagenet_error(tmp_path):
    """§4's ImageNet start is the default; without network the run stops before reading any data, with
    the file to place, where, and the binding for a run from random weights."""
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-m", "geoest.train", "--gin_file=gin/base_M.gin",
                           f"--model_dir={tmp_path / 'base_M'}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert (f"place resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5 (from https://storage.googleapis.com/"
            f"tensorflow/keras-applications/resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5) in "
            f"{tmp_path / 'keras' / 'models'}/") in errors[0]
    assert errors[0].endswith("--gin_param='IMAGENET_WEIGHTS=None'")
    assert done.stderr.rstrip().endswith(errors[0])    # nothing after it (no gin note)
    assert not os.path.exists(tmp_path / "base_M")


def test_finetune_stage_starts_from_the_model_and_stops_when_validation_converges(cells, tmp_path):
    """gin/finetune.gin on top of a variant (§4): init from the trained model, lr 0.001, up to five epochs,
    stopped once the validation loss no longer improves; a re-run does not train again."""
    _configure(cells, "train.steps_per_epoch = 2")
    train(str(tmp_path / "base"))
    gin.clear_config()
    with pytest.raises(InputError, match="FINETUNE_FROM"):
        parse_gin(["finetune.gin"])
    gin.clear_config()
    parse_gin(["finetune.gin"], [f"FINETUNE_FROM = '{tmp_path / 'base'}'"])
    assert gin.query_parameter("make_optimizer.learning_rate") == 0.001 and gin.query_parameter("train.epochs") == 5
    assert gin.query_parameter("train.patience") == 1
    # With learning rate 0 the validation loss stays the same: no improvement after epoch 1.
    tuning = [f"train.init_from = '{tmp_path / 'base'}'", "train.epochs = 5", "train.patience = 1",
              "make_optimizer.learning_rate = 0.0", "train.steps_per_epoch = 2"]
    _configure(cells, *tuning)
    record = Record()
    tuned = train(str(tmp_path / "tuned"), callbacks=[record])
    base = keras.saving.load_model(tmp_path / "base" / "best.keras", compile=False)
    np.testing.assert_array_equal(np.asarray(tuned.get_layer("fine").kernel), np.asarray(base.get_layer("fine").kernel))
    assert len(record.losses) == 2 and int(tuned.optimizer.iterations.numpy()) == 4
    assert json.loads((tmp_path / "tuned" / "best.json").read_text())["epoch"] == 1
    _configure(cells, *tuning)
    again = Record()
    train(str(tmp_path / "tuned"), callbacks=[again])
    assert again.start_step is None
