"""Preemption: SIGTERM to a running command stops it whole, with the documented exit status (75),
and the same command resumes there: training at the step and photo it stopped at, builds and
labelling at the shards or rows done. docs/guarantees.md cites these tests."""
import csv
import io
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from geoest.interrupt import EXIT_INTERRUPTED

REPO = pathlib.Path(__file__).resolve().parents[1]
PHOTOS = 200
BATCH = 8


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))


def _colour(index: int):
    """A constant colour naming photo `index` (0..255), robust to JPEG, crops, resizes and flips."""
    return (index // 16) * 16 + 8, (index % 16) * 16 + 8, 128


def _index(pixel) -> int:
    return int(pixel[0]) // 16 * 16 + int(pixel[1]) // 16


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """PHOTOS records whose photos' colours name them, all inside the cells of two partitionings."""
    import tensorflow as tf

    from geoest.data import records
    from geoest.geo import Partitioning

    root = tmp_path_factory.mktemp("preemption")
    rng = np.random.default_rng(0)
    cities = np.array([[48.85, 2.35], [40.71, -74.0], [35.68, 139.7], [-33.9, 151.2]])
    centre = cities[rng.integers(0, len(cities), 2 * PHOTOS)]
    lat, lon = centre[:, 0] + rng.normal(0, 1.0, len(centre)), centre[:, 1] + rng.normal(0, 1.0, len(centre))
    inside = np.ones(len(lat), bool)
    for name, tau_max in (("coarse", 120), ("fine", 40)):
        partitioning = Partitioning.build(lat, lon, tau_min=1, tau_max=tau_max, name=name)
        partitioning.to_csv(root / f"{name}.csv")
        inside &= partitioning.assign(lat, lon) >= 0
    lat, lon = lat[inside][:PHOTOS], lon[inside][:PHOTOS]     # every photo in a cell: nothing dropped
    assert len(lat) == PHOTOS
    with tf.io.TFRecordWriter(str(root / "train-00000-of-00001.tfrecord")) as writer:
        for i in range(PHOTOS):
            out = io.BytesIO()
            Image.new("RGB", (64, 48), _colour(i)).save(out, format="JPEG", quality=95)
            writer.write(records.encode_example(out.getvalue(), f"{i:04d}.jpg", float(lat[i]), float(lon[i])))
    (root / "driver.py").write_text(DRIVER)
    return root


# The real main, with an input function that also writes which photos each batch holds (read
# from their colours) to TRACE, one line per batch in the order Keras receives them.
DRIVER = '''
import os, sys
import gin
from geoest import cli, train

@gin.configurable
def traced_inputs(partitionings, batch_size, image_size, scene_level):
    import numpy as np, tensorflow as tf
    from geoest.training.inputs import tfrecord_inputs
    data = tfrecord_inputs(partitionings, batch_size, image_size, scene_level)
    trace = open(os.environ["TRACE"], "a", buffering=1)
    fits = tf.Variable(0, dtype=tf.int64)     # one iterator per fit: prefetched batches of an earlier one are not trained on
    def write(fit, images):
        pixels = images.numpy()[:, 0, 0, :].astype(int)
        trace.write(f"{os.getpid()}/{int(fit)} " + " ".join(str(p[0] // 16 * 16 + p[1] // 16) for p in pixels) + "\\n")
        return np.int32(0)
    def traced(fit, x, y):
        with tf.control_dependencies([tf.py_function(write, [fit, x], tf.int32)]):
            return tf.identity(x), y
    train = data.train
    data.train = tf.data.Dataset.range(1).map(lambda _: fits.assign_add(1)).flat_map(
        lambda fit: train.map(lambda x, y: traced(fit, x, y)))
    return data

cli.run(train.main)
'''


def _train_args(world, model_dir):
    return [sys.executable, str(world / "driver.py"), "--gin_file=gin/base_M.gin", "--gin_file=smoke.gin",
            f"--gin_param=train.partitionings = ['{world / 'coarse.csv'}', '{world / 'fine.csv'}']",
            "--gin_param=train.inputs = @traced_inputs",
            f"--gin_param=tfrecord_inputs.train_files = '{world}/train-*.tfrecord'",
            "--gin_param=tfrecord_inputs.validation_files = None",
            "--gin_param=train.steps_per_epoch = None", "--gin_param=train.epochs = 2",
            f"--gin_param=train.batch_size = {BATCH}", "--gin_param=train.checkpoint_every_n_steps = 1",
            "--gin_param=train_dataset.deterministic = True", "--gin_param=train_dataset.shuffle_buffer = 64",
            f"--model_dir={model_dir}"]


def _latest_step(model_dir) -> int:
    names = [p.name for p in (pathlib.Path(model_dir) / "checkpoints").glob("ckpt-*.index")]
    return max((int(n[len("ckpt-"):-len(".index")]) for n in names), default=0)


def _interrupt_after_a_step(args, model_dir, env, timeout=240):
    """Starts `args`, sends SIGTERM once a checkpoint past the one it started from appears, waits."""
    start = _latest_step(model_dir)
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while _latest_step(model_dir) <= start and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err, process.pid


@pytest.mark.slow
def test_training_preempted_three_times_in_an_epoch_sees_each_photo_once(world, tmp_path):
    model_dir = tmp_path / "run"
    env = dict(_env(), TRACE=str(tmp_path / "trace.txt"))
    args = _train_args(world, model_dir)
    runs = []                                   # (pid, first step, last step)
    for _ in range(3):
        first = _latest_step(model_dir)
        status, _, err, pid = _interrupt_after_a_step(args, model_dir, env)
        lines = [line for line in err.splitlines() if line.startswith("interrupted: ")]
        assert status == EXIT_INTERRUPTED, err[-3000:]
        assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
        step = int(lines[0].split("checkpoint at step ")[1].split()[0])
        assert step == _latest_step(model_dir) and first < step < PHOTOS // BATCH   # within epoch 1
        assert not (model_dir / "train.lock").exists()
        runs.append((pid, first, step))
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    total = 2 * PHOTOS // BATCH
    assert _latest_step(model_dir) == total
    runs.append((None, runs[-1][2], total))

    # The photos each run trained on: the first (last - first step) batches it received (the
    # final run fits twice: the rest of epoch 1, then epoch 2).
    batches = {}
    for line in (tmp_path / "trace.txt").read_text().splitlines():
        fit, *indices = line.split()
        batches.setdefault(fit, []).append([int(i) for i in indices])
    final = sorted({f.split("/")[0] for f in batches} - {str(r[0]) for r in runs})
    assert len(final) == 1
    runs[-1:] = [(f"{final[0]}/1", runs[-1][1], PHOTOS // BATCH), (f"{final[0]}/2", PHOTOS // BATCH, total)]
    seen = []
    for fit, first, last in runs:
        fit = fit if isinstance(fit, str) else f"{fit}/1"
        seen += [i for batch in batches[fit][:last - first] for i in batch]
    assert len(seen) == total * BATCH
    epoch1, epoch2 = seen[:PHOTOS], seen[PHOTOS:]
    assert sorted(epoch1) == list(range(PHOTOS)), "epoch 1 saw some photo twice or missed one"
    assert sorted(epoch2) == list(range(PHOTOS))
    with open(model_dir / "logs" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert [int(r["images"]) for r in rows][1] == PHOTOS and int(rows[1]["skipped_undecodable"]) == 0


def _interrupt_when(args, ready, timeout=240):
    """Starts `args`, sends SIGTERM once `ready()` holds, waits; returns (status, stdout, stderr)."""
    process = subprocess.Popen(args, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _one_interrupted_line(status, err):
    lines = [line for line in err.splitlines() if line.startswith("interrupted: ")]
    assert status == EXIT_INTERRUPTED, err[-3000:]
    assert len(lines) == 1 and "Traceback" not in err and "SIGTERM" in lines[0], err[-3000:]
    return lines[0]


@pytest.mark.slow
def test_build_tfrecords_stopped_by_sigterm_resumes_with_every_photo_once(tmp_path):
    from scene_helpers import write_meta, write_photos
    from test_reliability import _read_records

    ids = [f"{i // 100}/{i}.jpg" for i in range(600)]
    write_photos(tmp_path / "images", ids, size=(400, 300))          # shrunk to 320 px: work per photo
    write_meta(tmp_path / "meta.csv", ids)
    out = tmp_path / "records"
    args = [sys.executable, "tools/build_tfrecords.py", f"--images_dir={tmp_path / 'images'}",
            f"--meta_csv={tmp_path / 'meta.csv'}", f"--output_dir={out}", "--num_shards=6", "--workers=1"]
    status, _, err = _interrupt_when(args, lambda: any(out.glob("*-of-00006.tfrecord")))
    line = _one_interrupted_line(status, err)
    complete = sorted(out.glob("*-of-00006.tfrecord"))
    assert f"{len(complete)} of 6 shards complete" in line and 0 < len(complete) < 6
    assert not list(out.glob("*.tmp"))                              # the shard being written is dropped
    done = subprocess.run(args, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"({len(complete)} complete from an earlier run)" in done.stdout
    assert sorted(_read_records(out)) == sorted(ids)                 # none twice (a dict), none missing


@pytest.mark.slow
def test_label_scenes_stopped_by_sigterm_resumes_with_every_photo_once(tmp_path, places365_dir):
    from scene_helpers import read_rows, save_stand_in_model, write_meta, write_photos

    ids = [f"{i // 100}/{i}.jpg" for i in range(800)]
    write_photos(tmp_path / "images", ids, size=(320, 240))
    write_meta(tmp_path / "meta.csv", ids)
    save_stand_in_model(tmp_path / "scene.keras", 365)
    output = tmp_path / "labels.csv"
    args = [sys.executable, "tools/label_scenes.py", f"--images_dir={tmp_path / 'images'}",
            f"--meta_csv={tmp_path / 'meta.csv'}", f"--output_csv={output}", f"--weights={tmp_path / 'scene.keras'}",
            f"--places365_dir={places365_dir}", "--preprocess=tf", "--batch_size=4", "--workers=1"]
    status, _, err = _interrupt_when(args, lambda: output.exists() and output.stat().st_size > 2000)
    line = _one_interrupted_line(status, err)
    written = [row[0] for row in read_rows(output)[1:]]
    assert f"{len(written)} of {len(ids)} photos done" in line and 0 < len(written) < len(ids)
    done = subprocess.run(args, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    labelled = [row[0] for row in read_rows(output)[1:]]
    assert sorted(labelled) == sorted(ids) and len(set(labelled)) == len(labelled)


@pytest.mark.slow
def test_evaluate_stopped_by_sigterm_resumes_and_scores_every_photo_once(tmp_path):
    import inference_helpers as helpers
    from test_reliability import _results_ids, _write_shard

    parts = helpers.partitionings(1500)
    model_dir = tmp_path / "base_M"
    helpers.save_model_dir(helpers.tiny_model({p.name: len(p) for p in parts}, 32), parts, model_dir)
    lat, lon = helpers.clustered_points(600, seed=3)                  # 150 batches of 4
    ids = [f"{k:05d}.jpg" for k in range(len(lat))]
    _write_shard(tmp_path / "test-00000-of-00001.tfrecord", ids, lat, lon)
    out = tmp_path / "eval"
    args = [sys.executable, "-m", "geoest.evaluate", f"--model_dir={model_dir}", "--batch_size=4",
            f"--test_records={tmp_path / 'test-*.tfrecord'}", f"--output_dir={out}"]
    status, _, err = _interrupt_when(args, lambda: (out / "evaluate_partial.npz").exists())  # 20 batches scored
    line = _one_interrupted_line(status, err)
    with np.load(out / "evaluate_partial.npz") as partial:
        scored = partial["id"].tolist()
    assert f"{len(scored)} photos scored, saved in {out / 'evaluate_partial.npz'}" in line
    assert 80 <= len(scored) < len(ids) and len(set(scored)) == len(scored)
    assert not (out / "summary.json").exists() and not (out / "evaluate.lock").exists()
    done = subprocess.run(args, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming evaluation: {len(scored)} images already done" in done.stdout
    resumed = _results_ids(out / "base_M" / "results_hierarchy.csv")
    assert sorted(resumed) == ids                                  # none twice, none missing
    assert not (out / "evaluate_partial.npz").exists()
