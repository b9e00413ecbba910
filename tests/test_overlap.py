"""Test photos seen in training: the training files a model dir records, and the IMG_IDs they share
with a test set."""
import tensorflow as tf

from geoest.data import records
from geoest.inference import overlap


def _records(path, ids):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for img_id in ids:
            feature = {records.IMAGE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[img_id.encode()]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_training_files_as_the_operative_config_records_them(tmp_path):
    assert overlap.training_files(tmp_path) == []                          # no operative_config.gin
    config = tmp_path / "operative_config.gin"
    config.write_text("train.epochs = 15\ntfrecord_inputs.train_files = '/data/mp16-*.tfrecord'\n")
    assert overlap.training_files(tmp_path) == ["/data/mp16-*.tfrecord"]
    config.write_text("tfrecord_inputs.train_files = \\\n    ['/a/train-0.tfrecord',\n     '/b/train-1.tfrecord']\n"
                      "tfrecord_inputs.validation_files = '/a/val.tfrecord'\n")
    assert overlap.training_files(tmp_path) == ["/a/train-0.tfrecord", "/b/train-1.tfrecord"]
    config.write_text("tfrecord_inputs.train_files = @some_function()\n")
    assert overlap.training_files(tmp_path) == []


def test_training_overlap_counts_the_test_ids_trained_on(tmp_path):
    _records(tmp_path / "train-0.tfrecord", ["a.jpg", "b.jpg", "c.jpg"])
    _records(tmp_path / "train-1.tfrecord", ["d.jpg"])
    _records(tmp_path / "test.tfrecord", ["c.jpg", "d.jpg", "x.jpg"])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "operative_config.gin").write_text(
        f"tfrecord_inputs.train_files = '{tmp_path / 'train-*.tfrecord'}'\n")
    test_ids = overlap.record_ids([str(tmp_path / "test.tfrecord")])
    assert test_ids == {b"c.jpg", b"d.jpg", b"x.jpg"}
    assert overlap.training_overlap(model_dir, [str(tmp_path / "test.tfrecord")], test_ids) == 2
    assert overlap.training_overlap(model_dir, [], set()) == 0
    assert overlap.training_overlap(tmp_path / "untrained", [str(tmp_path / "test.tfrecord")], test_ids) == 0
