"""tools/build_tfrecords.py and geoest.data.build: shards, bad photos, resume."""
import io
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_helpers import bad_files, jpeg_bytes, write_images
from geoest.data import build, records
from geoest.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]


def _read_all(output_dir, prefix="meta"):
    files = sorted(str(p) for p in pathlib.Path(output_dir).glob(f"{prefix}-*.tfrecord"))
    examples = {}
    for serialized in tf.data.TFRecordDataset(files):
        features = records.parse_example(serialized)
        image_id = features[records.IMAGE_ID].numpy().decode()
        assert image_id not in examples, f"{image_id} written twice"
        examples[image_id] = {k: v.numpy() for k, v in features.items()}
    return examples


def _dataset(tmp_path, n_good=6):
    """Good photos in sub-folders (two large, one small, one greyscale) plus bad ones."""
    images = tmp_path / "images"
    files = {f"45/77/{i}.jpg": jpeg_bytes(400 + 10 * i, 500, seed=i) for i in range(n_good)}
    files["small.jpg"] = jpeg_bytes(100, 150, seed=50)
    grey = io.BytesIO()
    Image.fromarray(np.full((350, 330), 90, np.uint8)).save(grey, format="JPEG")
    files["grey.jpg"] = grey.getvalue()
    files.update(bad_files())
    write_images(images, files)
    ids = list(files) + ["missing.jpg"]
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-80, 80, len(ids)), rng.uniform(-170, 170, len(ids))
    probs3 = rng.dirichlet(np.ones(3), len(ids))
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,"
                    "Prob_indoor,Prob_natural,Prob_urban\n" + "".join(
                        f"{i},a,{lat[k]},{lon[k]},0,0,0,{probs3[k, 0]},{probs3[k, 1]},"
                        f"{probs3[k, 2]}\n" for k, i in enumerate(ids)))
    return images, meta, files, dict(zip(ids, zip(lat, lon, probs3)))


def test_build_writes_every_good_photo_and_names_the_bad(tmp_path):
    images, meta, files, truth = _dataset(tmp_path)
    summary = build.build_tfrecords(images, meta, tmp_path / "out", num_shards=3, workers=2,
                                    progress=False)
    examples = _read_all(tmp_path / "out")
    good = {i for i in files if i not in bad_files()}
    assert set(examples) == good
    assert summary.written == len(good)
    assert summary.skipped == {build.EMPTY: ["empty.jpg"], build.NOT_JPEG: ["png.jpg"],
                               build.CORRUPT: ["truncated.jpg"], build.MISSING: ["missing.jpg"]}
    for image_id, features in examples.items():
        lat, lon, probs3 = truth[image_id]
        assert features[records.LATITUDE] == pytest.approx(lat, abs=1e-4)
        assert features[records.LONGITUDE] == pytest.approx(lon, abs=1e-4)
        np.testing.assert_allclose(features[records.SCENE_PROBS3], probs3, atol=1e-6)
        height, width, _ = tf.io.decode_jpeg(features[records.IMAGE_ENCODED]).shape
        original = Image.open(io.BytesIO(files[image_id])).size   # (width, height)
        expected = min(1.0, 320 / min(original))
        assert min(height, width) == min(320, min(original))
        assert abs(width - original[0] * expected) <= 1 and abs(height - original[1] * expected) <= 1
    # A photo already small enough is kept byte for byte.
    assert examples["small.jpg"][records.IMAGE_ENCODED] == files["small.jpg"]
    assert "empty.jpg" in summary.report()


def test_rerun_skips_finished_shards_and_rejects_other_options(tmp_path):
    images, meta, _, _ = _dataset(tmp_path, n_good=4)
    out = tmp_path / "out"
    first = build.build_tfrecords(images, meta, out, num_shards=2, workers=1, progress=False)
    mtimes = {p: p.stat().st_mtime_ns for p in first.shards}
    again = build.build_tfrecords(images, meta, out, num_shards=2, workers=1, progress=False)
    assert again.resumed_shards == 2
    assert {p: p.stat().st_mtime_ns for p in again.shards} == mtimes
    assert again.written == first.written and again.skipped == first.skipped
    with pytest.raises(InputError, match="other options"):
        build.build_tfrecords(images, meta, out, num_shards=3, workers=1, progress=False)


@pytest.mark.slow   # two runs of the tool in subprocesses
def test_interrupted_build_resumes_without_duplicates(tmp_path):
    """Kill the tool while it waits on a photo of the last shard, then run it again."""
    images, meta, files, _ = _dataset(tmp_path, n_good=8)
    ids = list(files) + ["missing.jpg"]
    num_shards = 4
    last_shard = build.shard_rows(len(ids), num_shards)[-1]
    # Block on the last good photo of the last shard; workers read photos in order.
    good = [i for i in last_shard if ids[i] in files and ids[i] not in bad_files()]
    blocking = images / ids[good[-1]]
    blocking.unlink()
    os.mkfifo(blocking)              # reading it blocks until someone writes: a hung build
    out = tmp_path / "out"
    command = [sys.executable, str(REPO / "tools" / "build_tfrecords.py"),
               f"--images_dir={images}", f"--meta_csv={meta}", f"--output_dir={out}",
               f"--num_shards={num_shards}", "--workers=1"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None and not (
                list(out.glob("*.tmp")) and list(out.glob("*.tfrecord"))):
            time.sleep(0.2)
        time.sleep(2)                 # let it write what it can before the blocked photo
    finally:
        os.killpg(process.pid, signal.SIGKILL)   # the tool and its worker processes
        process.wait()
    done = sorted(out.glob("*.tfrecord"))
    assert 1 <= len(done) < num_shards and list(out.glob("*.tmp"))
    done_mtimes = {p: p.stat().st_mtime_ns for p in done}

    blocking.unlink()
    blocking.write_bytes(files[blocking.relative_to(images).as_posix()])
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(done)} complete from an earlier run" in result.stdout
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in done_mtimes.items())
    examples = _read_all(out)                   # asserts no id twice
    assert set(examples) == {i for i in files if i not in bad_files()}
    assert not list(out.glob("*.tmp"))


def test_tool_reports_a_bad_meta_row(tmp_path):
    (tmp_path / "images").mkdir()
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\na.jpg,1,2\nb.jpg,100,2\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "build_tfrecords.py"),
         f"--images_dir={tmp_path / 'images'}", f"--meta_csv={meta}",
         f"--output_dir={tmp_path / 'out'}"],
        env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "row 2" in result.stderr and "b.jpg" in result.stderr
