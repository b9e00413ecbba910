"""geoest.data.position: the position logged after each batch, moved to a step, checkpointed."""
import tensorflow as tf

from geoest.data.position import DataPosition


def test_batches_logged_give_the_position_after_each_step(tmp_path):
    position = DataPosition(seed=5)
    assert position.value() == (0, 0)
    position.begin(10)                                              # a fit starting at step 10
    generation = int(position.start_tf()[0])
    position.record_tf(generation, tf.constant([0, 0], tf.int64), tf.constant([1, 0], tf.int64))
    position.record_tf(generation, tf.constant([0, 1], tf.int64), tf.constant([2, 0], tf.int64))
    assert position.at(11) == (0, 2) and position.at(12) == (1, 1) and position.at(13) is None
    position.mark(12)
    assert position.value() == (1, 1)
    assert position.start_tf().numpy().tolist() == [generation, 1, 1, 5]

    path = position.checkpoint().write(str(tmp_path / "data"))
    restored = DataPosition()
    restored.checkpoint().read(path).assert_consumed()
    assert restored.value() == (1, 1) and int(restored.seed.numpy()) == 5
    position.begin(12)                                              # a new fit: its own log
    assert position.at(13) is None and position.value() == (1, 1)


def test_undecodable_photos_are_counted():
    position = DataPosition()
    for _ in range(3):
        position.count_undecodable()
    assert position.undecodable() == 3
