"""The test photos as batches: the three crops of each readable photo with its coordinates and scene
columns from the meta CSV (probabilities aggregated from the 365 when only those are given, labels
derived from them), missing and too small photos named, and what a test set's results depend on."""
import numpy as np
import pytest

from geoest.data import records
from geoest.data.photo_checks import default_min_side
from geoest.data.skip_log import SkipLog, small_reason
from geoest.inference import batches as test_batches
from geoest.inference.batches import MISSING, image_batches, record_batches
from geoest.inference.methods import load_scene_hierarchy_dir
from geoest.scene.columns import PROBS365_COLUMNS
from inference_helpers import image_bytes

SIZE = 32


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for k, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        (folder / name).write_bytes(image_bytes(48, 64, seed=k))
    (folder / "tiny.jpg").write_bytes(image_bytes(6, 8, seed=9))   # below SIZE // 4 px
    return folder


def test_batches_carry_the_crops_coordinates_and_published_scene_columns(images, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban\n"
                    "a.jpg,x,48.86,2.35,2,11,300,0.1,0.2,0.7\nmissing.jpg,x,1,2,0,0,0,1,0,0\n"
                    "b.jpg,x,-33.87,151.21,1,5,100,0.2,0.6,0.2\ntiny.jpg,x,0,0,0,0,0,1,0,0\n")
    log = SkipLog()
    batches = list(image_batches(images, meta, 2, SIZE, skip_log=log))
    got = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    order = np.argsort(got["id"])
    assert got["id"][order].tolist() == ["a.jpg", "b.jpg"]
    assert got["crops"].shape == (2, 3, SIZE, SIZE, 3) and got["crops"].dtype == np.uint8
    np.testing.assert_allclose(got["lat"][order], [48.86, -33.87])
    np.testing.assert_allclose(got["lon"][order], [2.35, 151.21])
    np.testing.assert_allclose(got["probs3"][order], [[0.1, 0.2, 0.7], [0.2, 0.6, 0.2]], rtol=1e-6)
    assert got["scene_labels"][order].tolist() == [[2, 11, 300], [1, 5, 100]]
    assert ("missing.jpg", MISSING) in log.unreadable
    # a missing file is named by its IMG_ID; a photo read and found too small by its path
    assert (str(images / "tiny.jpg"), small_reason(default_min_side(SIZE))) in log.unreadable, log.unreadable
    assert [b["id"].tolist() for b in image_batches(images, meta, 8, SIZE, min_side=0)][0].count("tiny.jpg") == 1


def test_scene_columns_derived_from_the_365_probabilities_or_unknown(images, tmp_path, places365_dir):
    hierarchy = load_scene_hierarchy_dir(places365_dir)
    probs365 = np.full((2, 365), 0.1 / 364)
    probs365[0, 17], probs365[1, 200] = 0.9, 0.9
    probs365 /= probs365.sum(axis=1, keepdims=True)
    meta = tmp_path / "meta365.csv"
    meta.write_text("IMG_ID,LAT,LON," + ",".join(PROBS365_COLUMNS) + "\n" + "".join(
        f"{name},0,0," + ",".join(f"{p:.8f}" for p in row) + "\n" for name, row in zip(("a.jpg", "b.jpg"), probs365)))
    got = {b["id"][k]: (b["probs3"][k], b["scene_labels"][k]) for b in image_batches(images, meta, 8, SIZE,
                                                                                      scene_hierarchy=hierarchy)
           for k in range(len(b["id"]))}
    for name, row in zip(("a.jpg", "b.jpg"), probs365):
        np.testing.assert_allclose(got[name][0], hierarchy.aggregate(row[None], "S3")[0], atol=1e-5)
        assert got[name][1].tolist() == [int(np.argmax(hierarchy.aggregate(row[None], level))) for level in
                                         ("S3", "S16", "S365")]
    plain = tmp_path / "plain.csv"
    plain.write_text("IMG_ID,LAT,LON\nc.jpg,5,6\n")
    (only,) = list(image_batches(images, plain, 8, SIZE))
    assert np.isnan(only["probs3"]).all() and only["scene_labels"].tolist() == [[-1, -1, -1]]


def test_record_batches_and_what_a_test_set_depends_on(tmp_path):
    import tensorflow as tf

    shard = tmp_path / "test-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for k in range(3):
            writer.write(records.encode_example(image_bytes(48, 64, seed=k), f"p{k}.jpg", 10.0 + k, 20.0))
    batches = list(record_batches(str(tmp_path / "test-*.tfrecord"), 2, SIZE))
    assert sorted(i.decode() for b in batches for i in b["id"]) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    identity = test_batches.test_set_identity(test_records=str(tmp_path / "test-*.tfrecord"))
    assert [r["path"] for r in identity["records"]] == [str(shard)]
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\na.jpg,1,2\n")
    before = test_batches.test_set_identity(images_dir=tmp_path, meta_csv=meta)
    meta.write_text("IMG_ID,LAT,LON\na.jpg,1,3\n")
    assert test_batches.test_set_identity(images_dir=tmp_path, meta_csv=meta)["meta_csv"] != before["meta_csv"]
