"""TFDS builders: `tfds build` from a manual_dir gives the records of build_tfrecords."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_helpers import bad_files, jpeg_bytes, write_images
from geoest.data import build, pipeline, records
from geoest.data.datasets import Im2gps, Im2gps3k, Mp16, Yfcc25600
from geoest.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
HEADER = ("IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,"
          "Prob_indoor,Prob_natural,Prob_urban\n")


def _manual_dir(folder: pathlib.Path, meta_name: str):
    files = {f"{i}_x.jpg": jpeg_bytes(330 + 20 * i, 420, seed=i) for i in range(4)}
    files["3/sub.jpg"] = jpeg_bytes(200, 150, seed=9)
    files.update(bad_files())
    write_images(folder / "images", files)
    rng = np.random.default_rng(1)
    ids = list(files) + ["gone_from_flickr.jpg"]
    probs3 = rng.dirichlet(np.ones(3), len(ids))
    (folder / meta_name).write_text(HEADER + "".join(
        f"{image_id},a,{rng.uniform(-60, 60)},{rng.uniform(-170, 170)},0,0,0,"
        f"{p[0]},{p[1]},{p[2]}\n" for image_id, p in zip(ids, probs3)))
    return files


def _flatten(example):
    return {f"{group}/{key}": value.numpy() for group, features in example.items()
            for key, value in features.items()}


def test_builders_are_registered_with_their_splits():
    assert {"mp16", "im2gps", "im2gps3k", "yfcc25600"} <= set(tfds.list_builders())
    assert (Mp16.SPLIT, Im2gps.SPLIT, Im2gps3k.SPLIT, Yfcc25600.SPLIT) == (
        "train", "test", "test", "validation")
    for builder in (Mp16, Im2gps, Im2gps3k, Yfcc25600):
        assert builder.META_CSV in builder.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_tfds_examples_equal_the_records(tmp_path, monkeypatch):
    monkeypatch.setattr(Im2gps3k, "WORKERS", 1)
    manual = tmp_path / "manual"
    files = _manual_dir(manual, Im2gps3k.META_CSV)
    builder = Im2gps3k(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    good = {i for i in files if i not in bad_files()}
    assert builder.info.splits["test"].num_examples == len(good)

    build.build_tfrecords(manual / "images", manual / Im2gps3k.META_CSV, tmp_path / "records",
                          workers=1, progress=False)
    expected = {}
    for serialized in tf.data.TFRecordDataset(
            [str(p) for p in (tmp_path / "records").glob("*.tfrecord")]):
        features = {k: v.numpy() for k, v in records.parse_example(serialized).items()}
        expected[features[records.IMAGE_ID].decode()] = features
    assert set(expected) == good

    ds = builder.as_dataset(split="test",
                            decoders={"image": {"encoded": tfds.decode.SkipDecoding()}})
    seen = set()
    for example in ds:
        got = _flatten(example)
        image_id = got[records.IMAGE_ID].decode()
        seen.add(image_id)
        assert set(got) == set(expected[image_id])
        for key, value in expected[image_id].items():
            if isinstance(value, np.ndarray) or isinstance(value, np.floating):
                np.testing.assert_array_equal(got[key], value)        # NaN == NaN here
            else:
                assert got[key] == value, key
    assert seen == good

    # The prepared files are records too: the eval pipeline reads them directly.
    pattern = os.path.join(builder.data_dir, "*.tfrecord*")
    ids = [i.decode() for b in pipeline.eval_dataset(pattern, 8, image_size=32)
           for i in b["id"].numpy()]
    assert sorted(ids) == sorted(good)


def test_missing_manual_files_say_where_to_get_them(tmp_path):
    builder = Yfcc25600(data_dir=str(tmp_path / "tfds"))
    with pytest.raises(InputError, match="yfcc25600_urls.csv"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path)))


@pytest.mark.slow   # the tfds command line in a subprocess
def test_tfds_build_command_line(tmp_path):
    manual = tmp_path / "manual"
    files = _manual_dir(manual, Im2gps.META_CSV)
    arguments = ["im2gps", "--imports=geoest.data.datasets", f"--manual_dir={manual}",
                 f"--data_dir={tmp_path / 'tfds'}"]
    try:
        import apache_beam  # noqa: F401  (the `tfds` entry point of TFDS 4.9 imports it)
        command = [sys.executable, "-m", "tensorflow_datasets.scripts.cli.main", "build"]
    except ImportError:     # without it, run the entry point's `build` command itself
        command = [sys.executable, "-c",
                   "import sys, simple_parsing\n"
                   "from tensorflow_datasets.scripts.cli import build\n"
                   "simple_parsing.parse(build.Args, args=sys.argv[1:]).execute()"]
    result = subprocess.run(command + arguments, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ds = tfds.load("im2gps", split="test", data_dir=str(tmp_path / "tfds"))
    ids = {example["image"]["id"].numpy().decode() for example in ds}
    assert ids == {i for i in files if i not in bad_files()}
