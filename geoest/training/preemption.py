"""Preemption and lost photos during training: stop whole at a signal, count what was skipped.

`StopOnSignal`: after SIGTERM / SIGINT (`geoest.interrupt`) the current step finishes, a
checkpoint is written at that step (model, optimizer, step counter and data position) and the
run stops with `Interrupted` ("checkpoint at step N saved"), exit status 75 from the mains; the
same command resumes at that step, at the same place in the data.

`SkipAccounting`: photos of an epoch that were not trained on, by reason, added to the epoch's
logs (metrics.csv) and logged: those dropped before decoding (not a JPEG, truncated, in no cell,
no scene label: counted once per pass over the records, `Inputs.count_skips`) and those whose
JPEG data did not decode (photos passed in the data position less photos trained on, never more
than the decoder counted: with parallel reads a batch's photos arrive out of order, so the
position runs ahead of the photos passed; the decoder's count runs ahead by what is prefetched;
each is an upper bound and exact where the other is). More than `max_skipped` of the photos read
lost to damage (unreadable or undecodable JPEGs) stops the run with one line. Photos in no cell (§3.1 discards cells under tau_min) or without a scene label
are reported, not limited: they follow from the partitionings and the records' scene columns.
"""
import logging

import keras

from geoest import interrupt
from geoest.data.skip_log import NO_CELL, NO_SCENE, NOT_JPEG, TRUNCATED
from geoest.errors import InputError

# metrics.csv columns, by reason
LOGGED = {"skipped_unreadable": (NOT_JPEG, TRUNCATED),
          "skipped_no_cell": (NO_CELL,), "skipped_no_scene": (NO_SCENE,)}
_MIN_SAMPLE = 2000   # photos read before the fraction is judged within an epoch


class StopOnSignal(keras.callbacks.Callback):
    """At a batch's end after a signal: a checkpoint at this step (through `checkpoint.save()`, a
    `PeriodicCheckpoint`), then `Interrupted`."""

    def __init__(self, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint

    def on_train_batch_end(self, batch, logs=None):
        if interrupt.requested():
            self.checkpoint.save()
            step = int(self.model.optimizer.iterations.numpy())
            interrupt.stop_if_requested(f"checkpoint at step {step} saved in {self.checkpoint.manager.directory}")


class SkipAccounting(keras.callbacks.Callback):
    """Per epoch: photos trained on (decoded) and skipped, by reason, into the epoch's logs.

    Args:
      position: the `DataPosition` of the training data.
      images_per_pass: photos one pass yields before decoding (`Inputs.count`).
      pass_skips: {reason: records of one pass dropped before decoding}.
      batch_size: the global batch.
      max_skipped: the largest fraction of the photos read that may be lost to damage.
    """

    def __init__(self, position, images_per_pass: int, pass_skips: dict, batch_size: int, max_skipped: float):
        super().__init__()
        if not 0.0 <= max_skipped <= 1.0:
            raise InputError(f"max_skipped {max_skipped}: expected a fraction in [0, 1]")
        self.position, self.per_pass, self.batch_size = position, max(1, images_per_pass), batch_size
        self.pass_skips, self.max_skipped = dict(pass_skips), max_skipped
        self._start = self._start_step = None
        self._epoch = 0
        self._attributed = position.undecodable()   # decoder counts reported for earlier epochs

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._start_step = epoch, self._step()
        self._start = self.position.at(self._start_step) or self.position.value()

    def counts(self, step: int) -> dict | None:
        """{"images", "skipped_undecodable", "skipped_*" by reason, "read", "lost"} since the epoch began."""
        end = self.position.at(step)
        if end is None or self._start is None:
            return None
        passed = (end[0] - self._start[0]) * self.per_pass + end[1] - self._start[1]
        used = (step - self._start_step) * self.batch_size
        share = passed / self.per_pass
        decoder_count = self.position.undecodable() - self._attributed
        out = {"images": used, "skipped_undecodable": max(0, min(passed - used, decoder_count))}
        for key, reasons in LOGGED.items():
            out[key] = round(share * sum(self.pass_skips.get(r, 0) for r in reasons))
        out["lost"] = out["skipped_undecodable"] + out["skipped_unreadable"]
        out["read"] = passed + round(share * sum(self.pass_skips.values()))
        return out

    def _check(self, counts, epoch) -> None:
        if counts["read"] and counts["lost"] / counts["read"] > self.max_skipped:
            fraction = counts["lost"] / counts["read"]
            reasons = ", ".join(f"{counts[k]} {k[len('skipped_'):].replace('_', ' ')}"
                                for k in ("skipped_undecodable", *LOGGED) if counts[k])
            raise InputError(f"epoch {epoch + 1}: {counts['lost']} of {counts['read']} training photos read "
                             f"({fraction:.1%}) were skipped ({reasons}), more than the {self.max_skipped:.1%} "
                             f"allowed (--max_skipped / train.max_skipped); repair the records or accept the loss "
                             f"with --max_skipped={min(1.0, fraction + 0.005):.3f}")

    def on_train_batch_end(self, batch, logs=None):
        counts = self.counts(self._step())
        if counts is not None and counts["read"] >= min(_MIN_SAMPLE, self.per_pass):
            self._check(counts, self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        counts = self.counts(self._step())
        if counts is None:
            return
        logging.info("epoch %d: %d photos trained on (decoded), %d skipped of %d read: %s", epoch + 1,
                     counts["images"], counts["lost"], counts["read"],
                     ", ".join(f"{k} {counts[k]}" for k in ("skipped_undecodable", *LOGGED)))
        self._attributed += counts["skipped_undecodable"]
        if logs is not None:
            logs.update({k: counts[k] for k in ("images", "skipped_undecodable", *LOGGED)})
        self._check(counts, epoch)
