"""Training on damaged records: photos whose JPEG data does not decode are counted and skipped,
never fed as pixels; losing more than --max_skipped stops the run with one line; a full disk is
one line and the re-run resumes. docs/guarantees.md cites these tests."""
import csv
import io
import subprocess

import numpy as np
import pytest
from PIL import Image

from test_preemption import BATCH, DRIVER, REPO, _colour, _env, _train_args

PHOTOS = 200
GOOD = set(range(0, PHOTOS, 10))          # one photo in ten decodes; the others' bodies are scrambled


def _scrambled(data: bytes, seed: int) -> bytes:
    """The JPEG with its entropy-coded body shuffled: start and end markers intact, data garbage."""
    data = bytearray(data)
    start = data.find(b"\xff\xda") + 20
    body = np.frombuffer(bytes(data[start:-2]), np.uint8).copy()
    np.random.default_rng(seed).shuffle(body)
    data[start:-2] = body.tobytes()
    return bytes(data)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    import tensorflow as tf

    from geoest.data import records
    from geoest.geo import Partitioning

    root = tmp_path_factory.mktemp("damaged")
    rng = np.random.default_rng(1)
    lat, lon = rng.normal(48.85, 0.5, PHOTOS), rng.normal(2.35, 0.5, PHOTOS)
    for name, tau_max in (("coarse", 1000), ("fine", 500)):
        Partitioning.build(lat, lon, tau_min=1, tau_max=tau_max, name=name).to_csv(root / f"{name}.csv")
    with tf.io.TFRecordWriter(str(root / "train-00000-of-00001.tfrecord")) as writer:
        for i in range(PHOTOS):
            out = io.BytesIO()
            if i in GOOD:           # a colour naming the photo (tests/test_preemption.py)
                Image.new("RGB", (64, 48), _colour(i)).save(out, format="JPEG", quality=95)
                jpeg = out.getvalue()
            else:
                Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)).save(
                    out, format="JPEG", quality=90)
                jpeg = _scrambled(out.getvalue(), i)
            writer.write(records.encode_example(jpeg, f"{i:04d}.jpg", float(lat[i]), float(lon[i])))
    (root / "driver.py").write_text(DRIVER)
    return root


@pytest.mark.slow
def test_undecodable_photos_are_counted_skipped_and_stop_the_run(damaged, tmp_path):
    args = [a for a in _train_args(damaged, tmp_path / "run") if "deterministic" not in a and "epochs" not in a]
    args += ["--gin_param=train.epochs = 1", "--gin_param=train_dataset.deterministic = True"]
    env = dict(_env(), TRACE=str(tmp_path / "trace.txt"))
    stopped = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("error: ")]
    assert stopped.returncode == 2 and len(errors) == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert "undecodable" in errors[0] and "--max_skipped" in errors[0]
    assert not (tmp_path / "run" / "train.lock").exists()

    (tmp_path / "trace.txt").unlink()
    args = [a.replace(str(tmp_path / "run"), str(tmp_path / "accepted")) for a in args]
    accepted = subprocess.run(args + ["--max_skipped=1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    with open(tmp_path / "accepted" / "logs" / "metrics.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    steps = PHOTOS // BATCH
    assert int(row["images"]) == steps * BATCH            # the decoded photos trained on
    # ten passes over the records give the 200 decoded photos: nine in ten of each pass skipped
    passes = steps * BATCH / len(GOOD)
    assert abs(int(row["skipped_undecodable"]) - passes * (PHOTOS - len(GOOD))) <= PHOTOS
    fed = {int(i) for line in (tmp_path / "trace.txt").read_text().splitlines() for i in line.split()[1:]}
    assert fed <= GOOD                                     # never a scrambled photo's pixels
