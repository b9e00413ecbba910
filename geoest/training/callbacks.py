"""Callbacks of the trainer: checkpoints every N steps, and validation with the best model kept (§4)."""
import json
import logging
import math
import os

import keras
import numpy as np
import tensorflow as tf

from geoest.geo import THRESHOLDS_KM, great_circle_km
from geoest.models import SparseCrossEntropy
from geoest.training.inputs import LAT, LON

HIERARCHY = "hierarchy"  # §3.4 f*: the finest partitioning refined by all coarser ones


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves model and optimizer (with its step counter) every `every_n_steps` and after each epoch."""

    def __init__(self, manager: tf.train.CheckpointManager, every_n_steps: int):
        super().__init__()
        self.manager = manager
        self.every_n_steps = every_n_steps
        self._saved_at = None

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def save(self) -> None:
        step = self._step()
        if step != self._saved_at:
            self.manager.save(checkpoint_number=step)
            self._saved_at = step

    def on_train_begin(self, logs=None):
        self._saved_at = self._step()

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps and self._step() - self._saved_at >= self.every_n_steps:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()


class GeoValidation(keras.callbacks.Callback):
    """After each epoch: validation loss, top-1 per head and great-circle accuracy; keeps the best model.

    Adds to the epoch logs (seen by TensorBoard and History when this callback comes first):
    val_loss (the training loss without weight decay), val_<head>_top1, val_<head>_acc_<r>km for
    each geo head and radius r in THRESHOLDS_KM (Class2GPS: the mean location of the predicted
    cell, §3.4) and, for several partitionings, val_hierarchy_acc_<r>km (§3.4 f*).
    The model with the best `monitor` value is written to `best_path` (.keras) with a JSON record.
    With `patience`, training stops once `monitor` has not improved for that many epochs (§4's
    fine-tuning "until the loss on the validation set converges"); a resumed run counts from the
    best epoch in the record.
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

    def _make_step(self):
        names = list(self.loss_weights)
        per_image = SparseCrossEntropy(reduction=None)
        hierarchy = self.hierarchy

        def replica_step(images, targets):
            logits = self.model(images, training=False)
            out = {LAT: targets[LAT], LON: targets[LON]}
            for name in names:
                out[f"{name}/label"] = tf.cast(targets[name], tf.int32)
                out[f"{name}/top"] = tf.argmax(logits[name], axis=-1, output_type=tf.int32)
                out[f"{name}/loss"] = per_image(targets[name], logits[name])
            if hierarchy is not None:
                probs = [tf.nn.softmax(logits[p.name]) for p in hierarchy.partitionings]
                out[f"{HIERARCHY}/top"] = tf.argmax(hierarchy.combine_tf(probs), axis=-1, output_type=tf.int32)
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
        heads = [(p.name, p) for p in self.partitionings]
        if self.hierarchy is not None:
            heads.append((HIERARCHY, self.hierarchy.partitionings[-1]))
        for name, partitioning in heads:
            center = partitioning.centers[results[f"{name}/top"]]  # §3.4 Class2GPS
            dist_km = great_circle_km(results[LAT], results[LON], center[:, 0], center[:, 1])
            for radius in THRESHOLDS_KM:
                logs[f"val_{name}_acc_{radius}km"] = float(np.mean(dist_km <= radius))
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
            keras.Model(self.model.inputs, self.model.outputs, name=self.model.name).save(path)
            record = {"epoch": epoch + 1, "step": int(self.model.optimizer.iterations.numpy()),
                      self.monitor: value, **{k: v for k, v in logs.items() if k.startswith("val_")}}
            with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1, default=float)
            logging.info("epoch %d: %s = %s, model saved to %s", epoch + 1, self.monitor, value, self.best_path)
        if self.converged(epoch + 1):
            logging.info("epoch %d: %s has not improved for %d epoch(s) (best %s at epoch %d): converged, stopping",
                         epoch + 1, self.monitor, self.patience, self.best, self.best_epoch)
            self.model.stop_training = True
