"""The SkipLog: what an input pipeline drops, counted by reason, with every unreadable photo and
damaged shard named; the reasons are its keys."""
import collections
import logging
import threading

import numpy as np
import tensorflow as tf

_RECORD_FRAMING = 16          # bytes around each TFRecord: length, its CRC, the data's CRC

# Why a record was dropped (SkipLog keys). The first two are unreadable photos.
NOT_JPEG = "not a JPEG (empty, PNG, other)"
TRUNCATED = "truncated JPEG (no end marker)"
NO_CELL = "in no cell of a partitioning"
NO_SCENE = "no scene probabilities"
BELOW_TAU_S = "concept probability <= tau_S"
REASONS = (NOT_JPEG, TRUNCATED, NO_CELL, NO_SCENE, BELOW_TAU_S)   # a reason's code is its index here
_UNREADABLE = (NOT_JPEG, TRUNCATED)
UNOPENABLE = "missing or unreadable file"
DAMAGED_SHARD = "in a damaged shard (corrupt or truncated record)"


def small_reason(min_side: int) -> str:
    """The SkipLog reason of a photo whose shorter side is below `min_side` px."""
    return f"shorter side below {min_side} px (--min_side)"


class SkipLog:
    """Counts the records a pipeline drops, by reason, and names every unreadable photo.

    Pass one to a pipeline factory and read it while or after iterating:
    `log.counts` {reason: n}; `log.unreadable` [(IMG_ID, reason)]; `log.damaged` {shard:
    (records read before the damage, bytes read)}, checked at the end of each pass over a shard;
    `log.records_read`. Unreadable photos and damaged shards are also logged as warnings.
    Thread-safe (tf.data calls it from several threads).
    """

    def __init__(self):
        self.counts = collections.Counter()
        self.unreadable = []
        self.shard_sizes = {}     # shard path -> bytes, of the shards a pipeline reads
        self.damaged = {}         # shard path -> (records read before the damage, bytes read)
        self.records_read = 0     # records read from shards, over all passes
        self.links_followed = 0   # photos read through a link out of their folder (--follow_links)
        self.bytes_read = 0
        self._passes = {}         # shard path -> [records, bytes] read in the current pass
        self._lock = threading.Lock()

    def add(self, image_id: str, reason: str) -> None:
        """Counts one photo skipped before any pipeline saw it (missing, outside its folder)."""
        with self._lock:
            self.counts[reason] += 1
            self.unreadable.append((image_id, reason))
        logging.warning("skipped image %s: %s", image_id, reason)

    def _count_read(self, path, records, size):
        path = path.numpy().decode("utf-8", "replace")
        with self._lock:
            done = self._passes.setdefault(path, [0, 0])
            if records:
                done[0] += int(records)
                done[1] += int(size)
                self.records_read += int(records)
                self.bytes_read += int(size)
                return np.int32(0)
            expected = self.shard_sizes.get(path)       # an empty chunk: the end of a pass
            if expected is not None and done[1] != expected and path not in self.damaged:
                self.damaged[path] = tuple(done)
                logging.warning("shard %s is damaged: record %d (byte %d of %d) cannot be read; "
                                "the rest of the shard is skipped", path, done[0], done[1], expected)
            self._passes[path] = [0, 0]
        return np.int32(0)

    def count_read_tf(self, path, chunk):
        """Graph op: counts a chunk (string [k]) of records read from shard `path`; an empty chunk
        ends a pass over the shard, which is then checked against its size."""
        size = tf.reduce_sum(tf.cast(tf.strings.length(chunk), tf.int64)) \
            + _RECORD_FRAMING * tf.cast(tf.size(chunk), tf.int64)
        return tf.py_function(self._count_read, [path, tf.size(chunk), size], tf.int32)

    def lost_in_damaged_shards(self) -> int:
        """Records estimated lost past the damage of each damaged shard: its unread bytes over its
        mean record size (over all shards when none of its records could be read); at least one."""
        lost = 0
        for path, (records, size) in self.damaged.items():
            per_record = size / records if records else (self.bytes_read / max(self.records_read, 1))
            unread = self.shard_sizes[path] - size
            lost += max(1, round(unread / per_record)) if per_record else 1
        return lost

    def _record(self, reason_codes, ids):
        with self._lock:
            for code, image_id in zip(reason_codes.numpy(), ids.numpy()):
                reason = REASONS[code]
                self.counts[reason] += 1
                if reason in _UNREADABLE:
                    image_id = image_id.decode("utf-8", "replace")
                    self.unreadable.append((image_id, reason))
                    logging.warning("skipped image %s: %s", image_id, reason)
        return np.int32(len(reason_codes))

    def record_tf(self, reason_codes, ids):
        """Graph op: records `ids` (string [k]) dropped for `reason_codes` (int32 [k])."""
        return tf.py_function(self._record, [reason_codes, ids], tf.int32)

    def __repr__(self):
        return f"SkipLog({dict(self.counts)})"


def drop_logged(batch, reason, skip_log):
    """Drops the rows of a dict of [N, ...] tensors whose reason is >= 0, logging their ids."""
    keep = reason < 0
    logged = skip_log.record_tf(tf.boolean_mask(reason, ~keep),
                                tf.boolean_mask(batch["id"], ~keep))
    with tf.control_dependencies([logged]):
        keep = tf.identity(keep)
    return {key: tf.boolean_mask(value, keep) for key, value in batch.items()}
