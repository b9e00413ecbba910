"""Callbacks of the trainer: checkpoints every N steps, and validation with the best model kept (§4)."""
import json
import logging
import math
import os

import keras
import numpy as np
import tensorflow as tf

from geoest.files import atomic_path, write_text
from geoest.geo import THRESHOLDS_KM, accuracy_at
from geoest.geo.hierarchy import HIERARCHY
from geoest.geo.scoring import errors_km
from geoest.models.inference_model import TOP_CLASSES, crop_probabilities, locate_cells
from geoest.training.inputs import LAT, LON

_TINY = float(np.finfo(np.float32).tiny)   # floor of a probability before its log


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves model and optimizer (with its step counter) every `every_n_steps` and after each epoch,
    and with a `DataPosition` the data position after that step."""

    def __init__(self, manager: tf.train.CheckpointManager, every_n_steps: int, position=None):
        super().__init__()
        self.manager = manager
        self.every_n_steps = every_n_steps
        self.position = position
        self._saved_at = None

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def save(self) -> None:
        step = self._step()
        if step != self._saved_at:
            if self.position is not None:
                self.position.mark(step)
            self.manager.save(checkpoint_number=step)
            self._saved_at = step

    def on_train_begin(self, logs=None):
        self._saved_at = self._step()

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps and self._step() - self._saved_at >= self.every_n_steps:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()


def true_class_nll(probs, labels):
    """-log p(true class) per photo, 0 where the label is -1 (no class): float32 [batch].

    Args:
      probs: float32 [batch, n] (mean crop probabilities); labels: int [batch].
    """
    labels = tf.cast(labels, tf.int32)
    valid = labels >= 0
    p_true = tf.gather(probs, tf.maximum(labels, 0), axis=1, batch_dims=1)
    return tf.where(valid, -tf.math.log(tf.maximum(p_true, _TINY)), 0.0)


class GeoValidation(keras.callbacks.Callback):
    """After each epoch: validation loss, top-1 per head and great-circle accuracy; keeps the best model.

    Validation is §3.4 as evaluation does it (`geoest.evaluate`), with the same functions: the
    three crops of each photo and the mean of their probabilities (`crop_probabilities`), each
    head's and f*'s best class (`locate_cells`), Class2GPS (`Partitioning.class2gps`, the cell's
    mean photo coordinate) and the scored error (`geoest.geo.scoring.errors_km`, `accuracy_at`);
    its accuracies are evaluation's on the same photos.

    Adds to the epoch logs (seen by TensorBoard and History when this callback comes first):
      val_loss: sum over heads of loss weight x mean over photos of -log p(true class), p the
        crop-mean probabilities (photos without a class add 0; no weight decay);
      val_<head>_top1: top-1 accuracy of each head (geo heads and the MTN's scene head) over the
        photos with a label;
      val_<head>_acc_<r>km for each geo head and radius r in THRESHOLDS_KM and, for several
        partitionings, val_hierarchy_acc_<r>km (§3.4 f*).
    The model with the best `monitor` value is written to `best_path` (.keras) with a JSON record.
    With `patience`, training stops once `monitor` has not improved for that many epochs (§4's
    fine-tuning "until the loss on the validation set converges"); a resumed run counts from the
    best epoch in the record.

    Args:
      validation: finite dataset of (crops uint8 [B, 3, S, S, 3], {head: int labels [B], "lat",
        "lon": degrees [B]}) (`Inputs.validation`), or None.
      partitionings: the geo heads' partitionings; hierarchy: their `Hierarchy` for f*, or None.
    """

    def __init__(self, validation, partitionings, hierarchy, strategy, loss_weights, best_path,
                 monitor="val_loss", steps=None, patience=None):
        super().__init__()
        self.validation = validation
        self.partitionings = list(partitionings)
        self.hierarchy = hierarchy
        self.strategy = strategy
        self.loss_weights = dict(loss_weights)
        self.best_path = best_path
        self.record_path = os.path.splitext(best_path)[0] + ".json"
        self.monitor = monitor
        self.minimize = "loss" in monitor
        self.steps = steps
        self.patience = patience
        self.best = self.best_epoch = None
        if os.path.exists(self.record_path):
            with open(self.record_path, encoding="utf-8") as f:
                record = json.load(f)
            self.best, self.best_epoch = record.get(monitor), record.get("epoch")
        self._step_fn = None

    def _outputs(self):
        """(output name, partitioning whose cells its classes index): each head, then f*."""
        outputs = [(p.name, p) for p in self.partitionings]
        if self.hierarchy is not None:
            outputs.append((HIERARCHY, self.hierarchy.partitionings[-1]))
        return outputs

    def _make_step(self):
        heads = list(self.loss_weights)
        if self.hierarchy is not None:
            geo_names, parents = [p.name for p in self.hierarchy.partitionings], self.hierarchy.parents
        else:
            geo_names, parents = [p.name for p in self.partitionings], None
        outputs = [name for name, _ in self._outputs()]

        def replica_step(crops, targets):
            probs = crop_probabilities(self.model, crops)    # §3.4 step 1
            located = locate_cells({name: probs[name] for name in geo_names}, geo_names, parents, top_k=1)
            out = {LAT: targets[LAT], LON: targets[LON]}
            out.update({f"{name}/top": located[f"{name}/{TOP_CLASSES}"][:, 0] for name in outputs})
            for name in heads:
                out[f"{name}/label"] = tf.cast(targets[name], tf.int32)
                out[f"{name}/loss"] = true_class_nll(probs[name], targets[name])
                if name not in geo_names:   # the MTN's scene head
                    out[f"{name}/top"] = tf.argmax(probs[name], axis=-1, output_type=tf.int32)
            return out

        @tf.function
        def step(batch):
            per_replica = self.strategy.run(replica_step, args=batch)
            return {k: self.strategy.gather(v, axis=0) for k, v in per_replica.items()}

        return step

    def evaluate(self) -> dict:
        """One pass over the validation data; returns the val_* metrics."""
        if self._step_fn is None:
            self._step_fn = self._make_step()
        data = self.validation if self.steps is None else self.validation.take(self.steps)
        parts = {}
        for batch in self.strategy.experimental_distribute_dataset(data):
            for key, value in self._step_fn(batch).items():
                parts.setdefault(key, []).append(value.numpy())
        if not parts:
            return {}
        results = {k: np.concatenate(v) for k, v in parts.items()}
        logs = {"val_loss": sum(w * float(np.mean(results[f"{name}/loss"])) for name, w in self.loss_weights.items())}
        for name in self.loss_weights:
            labels, top = results[f"{name}/label"], results[f"{name}/top"]
            valid = labels >= 0
            if valid.any():  # e.g. no scene labels in the validation records
                logs[f"val_{name}_top1"] = float(np.mean(top[valid] == labels[valid]))
        for name, partitioning in self._outputs():
            points = partitioning.class2gps()[results[f"{name}/top"]]   # §3.4 Class2GPS
            accuracy = accuracy_at(errors_km(results[LAT], results[LON], points[:, 0], points[:, 1]))
            logs.update({f"val_{name}_acc_{radius}km": accuracy[radius] for radius in THRESHOLDS_KM})
        return logs

    def _improved(self, value) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.best is None:
            return True
        return value < self.best if self.minimize else value > self.best

    def converged(self, epochs_done: int) -> bool:
        """True when `monitor` has not improved for `patience` epochs after `epochs_done` epochs."""
        return bool(self.patience and self.validation is not None and self.best_epoch is not None
                    and epochs_done - self.best_epoch >= self.patience)

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        if self.validation is not None:
            logs.update(self.evaluate())
        value = logs.get(self.monitor)
        # Without validation data the latest epoch's model is kept.
        if self.validation is None or self._improved(value):
            self.best, self.best_epoch = value, epoch + 1
            path = self.best_path
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            # A functional view of the same layers: saved without optimizer state.
            # Whole or not at all: a run killed while saving keeps the previous best model.
            with atomic_path(path) as tmp:
                # (`input`: the one input tensor, so that calling the saved model with one tensor
                # matches its input structure; `inputs` would make it a list of one.)
                keras.Model(self.model.input, self.model.outputs, name=self.model.name).save(tmp)
            record = {"epoch": epoch + 1, "step": int(self.model.optimizer.iterations.numpy()),
                      self.monitor: value, **{k: v for k, v in logs.items() if k.startswith("val_")}}
            write_text(os.path.splitext(path)[0] + ".json", json.dumps(record, indent=1, default=float))
            logging.info("epoch %d: %s = %s, model saved to %s", epoch + 1, self.monitor, value, self.best_path)
        if self.converged(epoch + 1):
            logging.info("epoch %d: %s has not improved for %d epoch(s) (best %s at epoch %d): converged, stopping",
                         epoch + 1, self.monitor, self.patience, self.best, self.best_epoch)
            self.model.stop_training = True
