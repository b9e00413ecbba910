"""DataPosition: where a repeated training pipeline is in its data (pass, photos consumed, seed),
checkpointed so that a resumed run continues there."""
import collections
import threading

import numpy as np
import tensorflow as tf


class DataPosition:
    """Where a repeated training pipeline is in its data, so that a resumed run continues there.

    The pipeline reads pass after pass over the records; pass k is shuffled with the seed
    (seed, k), so any pass can be rebuilt on its own. A position is (pass, photos of that pass
    consumed), counted in the labelled stream before decoding: a resume rebuilds its pass and
    skips the consumed photos without decoding them (records are read and parsed, no JPEG
    decoded). Its variables (`checkpoint()`) go into the trainer's checkpoint:

      pass_index  int64, the pass of the next photo;
      consumed    int64, photos of that pass consumed before it (labelled stream position);
      seed        int64, the shuffling and augmentation seed (a random one is kept, so that a
                  resumed run shuffles as the first one did).

    Each batch the pipeline yields is logged with the position after its last photo, in the
    order Keras receives them; `mark(step)` moves the variables to the position after the batch
    of that training step (call it just before saving a checkpoint), and `begin(step)` before
    each `fit` (a new iterator reads the variables when it starts). With `deterministic=True`
    the position is exact: a run stopped and resumed any number of times sees every photo of a
    pass once; otherwise parallel reads reorder photos and it is approximate.
    """

    def __init__(self, seed: int = 0):
        self.pass_index = tf.Variable(0, dtype=tf.int64, trainable=False, name="pass_index")
        self.consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="consumed")
        self.seed = tf.Variable(int(seed), dtype=tf.int64, trainable=False, name="seed")
        self._generation = tf.Variable(0, dtype=tf.int64, trainable=False, name="generation")
        self._batches = collections.defaultdict(list)   # generation -> [(pass, consumed) after each batch]
        self._first_step = 0
        self._undecodable = 0          # photos whose JPEG data did not decode, as the pipeline read them
        self._lock = threading.Lock()

    def checkpoint(self):
        """The trackable the trainer puts into its `tf.train.Checkpoint` (pass, consumed, seed)."""
        return tf.train.Checkpoint(pass_index=self.pass_index, consumed=self.consumed, seed=self.seed)

    def value(self) -> tuple:
        """(pass, photos of that pass consumed) as the variables hold it."""
        return int(self.pass_index.numpy()), int(self.consumed.numpy())

    def begin(self, step: int) -> None:
        """Before a `fit` at training step `step`: the variables say where its data starts."""
        self.mark(step)
        with self._lock:
            self._generation.assign_add(1)
            self._first_step = step

    def at(self, step: int):
        """The position after training step `step` of the current `fit`, or None if unknown."""
        with self._lock:
            log = self._batches.get(int(self._generation.numpy()), [])
            k = step - self._first_step - 1
            return log[k] if 0 <= k < len(log) else None

    def mark(self, step: int) -> None:
        """Moves the variables to the position after training step `step` (when it is known)."""
        position = self.at(step)
        if position is not None:
            self.pass_index.assign(position[0])
            self.consumed.assign(position[1])

    def count_undecodable(self) -> None:
        """Called by the pipeline for each photo whose JPEG data does not decode."""
        with self._lock:
            self._undecodable += 1

    def undecodable(self) -> int:
        """Photos found undecodable so far in this process (counted where the pipeline reads,
        so prefetched photos are counted before they are trained on)."""
        with self._lock:
            return self._undecodable

    def _record(self, generation, passes, indices):
        passes, indices = passes.numpy(), indices.numpy()
        if len(passes):
            last = max(zip(passes.tolist(), indices.tolist()))
            with self._lock:
                self._batches[int(generation.numpy())].append((last[0], last[1] + 1))
        return np.int32(0)

    def record_tf(self, generation, passes, indices):
        """Graph op: logs a batch yielded by iterator `generation` whose photos sit at `indices`
        (int64 [B]) of `passes` (int64 [B])."""
        return tf.py_function(self._record, [generation, passes, indices], tf.int32)

    def start_tf(self):
        """Graph op read when an iterator starts: int64 [4] (generation, pass, consumed, seed)."""
        return tf.stack([self._generation.read_value(), self.pass_index.read_value(),
                         self.consumed.read_value(), self.seed.read_value()])
