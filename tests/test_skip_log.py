"""geoest.data.skip_log: drops counted by reason, unreadable photos and damaged shards named."""
import tensorflow as tf

from geoest.data.skip_log import NO_CELL, NOT_JPEG, REASONS, TRUNCATED, SkipLog, drop_logged


def test_dropped_rows_are_counted_and_only_unreadable_photos_named():
    log = SkipLog()
    batch = {"id": tf.constant(["a", "b", "c", "d", "e"]), "lat": tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])}
    reason = tf.constant([-1, REASONS.index(NOT_JPEG), REASONS.index(NO_CELL), -1, REASONS.index(TRUNCATED)])
    kept = drop_logged(batch, reason, log)
    assert kept["id"].numpy().tolist() == [b"a", b"d"] and kept["lat"].numpy().tolist() == [1.0, 4.0]
    assert log.counts == {NOT_JPEG: 1, NO_CELL: 1, TRUNCATED: 1}
    assert sorted(log.unreadable) == [("b", NOT_JPEG), ("e", TRUNCATED)]      # a photo in no cell is no bad photo
    log.add("missing.jpg", "missing or unreadable file")
    assert log.counts["missing or unreadable file"] == 1 and log.unreadable[-1][0] == "missing.jpg"


def test_a_pass_stopping_short_of_the_shard_size_names_the_shard():
    log = SkipLog()
    records = tf.constant([b"x" * 10, b"y" * 10])                 # 10 bytes of data + 16 of framing each
    log.shard_sizes.update({"whole": 52, "cut": 130})
    for path in ("whole", "cut"):
        log.count_read_tf(tf.constant(path), records)
        log.count_read_tf(tf.constant(path), tf.constant([], tf.string))   # the end of a pass
    assert log.records_read == 4 and log.bytes_read == 104
    assert log.damaged == {"cut": (2, 52)}
    assert log.lost_in_damaged_shards() == 3                        # 78 unread bytes, 26 per record
