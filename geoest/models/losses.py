"""§3.3 losses: L_geo^multi = mean over partitionings of the cross-entropies; MTN: L_total = L_geo + L_scene.

§4 weight decay 1e-4 is added as an L2 penalty on the kernels (see `add_weight_decay`).

Beyond the paper, `make_losses.distance_tau_km` replaces each head's one-hot target by a
distance-aware one (PIGEON's haversine label smoothing, `DistanceAwareCrossEntropy`); one-hot
stays the default, as in the paper.
"""
from collections.abc import Mapping

import gin
import keras
import numpy as np

from geoest.errors import InputError
from geoest.geo.distance import EARTH_RADIUS_KM

from geoest.models.geo_model import SCENE_HEAD


@keras.saving.register_keras_serializable(package="geoest")
class SparseCrossEntropy(keras.losses.Loss):
    """Cross-entropy of integer labels [batch] against logits [batch, n], with optional label smoothing.

    A label < 0 marks an image outside every cell of that partitioning: it adds 0 to the loss (it
    still counts in the batch size the loss is averaged over, as Keras scales by the global batch).
    """

    def __init__(self, label_smoothing=0.0, name="sparse_cross_entropy", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        logits = ops.cast(y_pred, "float32")
        n = ops.shape(logits)[-1]
        valid = labels >= 0
        one_hot = ops.one_hot(ops.where(valid, labels, 0), n)
        if self.label_smoothing:
            one_hot = one_hot * (1.0 - self.label_smoothing) + self.label_smoothing / ops.cast(n, "float32")
        per_image = -ops.sum(one_hot * ops.log_softmax(logits, axis=-1), axis=-1)
        return ops.where(valid, per_image, 0.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="geoest")
class DistanceAwareCrossEntropy(keras.losses.Loss):
    """Cross-entropy against distance-aware targets (PIGEON's haversine label smoothing).

    The target of class i for a photo of class c is exp(-(d(true, c_i) - d(true, c_c)) / tau),
    normalised over the classes, d the great-circle distance (km) to each cell's point. The
    records give the trainer classes, not coordinates, so "true" is the Class2GPS point of the
    photo's cell (d(true, c_c) = 0). A label < 0 adds 0, as in `SparseCrossEntropy`.

    Args:
      centers: float [n, 2] [lat, lon] degrees of each class's point (`Partitioning.centers`).
      tau_km: tau > 0 in km; small tau approaches one-hot.
    """

    def __init__(self, centers, tau_km: float, name="distance_aware_cross_entropy", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.centers = np.asarray(centers, np.float64).reshape(-1, 2)
        self.tau_km = float(tau_km)
        if not self.tau_km > 0:
            raise InputError(f"distance-aware targets: tau {tau_km!r} km must be above 0")

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        logits = ops.cast(y_pred, "float32")
        valid = labels >= 0
        rad = np.radians(self.centers).astype("float32")
        lat, lon = ops.convert_to_tensor(rad[:, 0]), ops.convert_to_tensor(rad[:, 1])
        safe = ops.where(valid, labels, 0)
        lat_true, lon_true = ops.take(lat, safe)[:, None], ops.take(lon, safe)[:, None]
        h = ops.sin((lat[None] - lat_true) / 2) ** 2 + ops.cos(lat_true) * ops.cos(lat[None]) * ops.sin(
            (lon[None] - lon_true) / 2) ** 2
        dist_km = 2 * EARTH_RADIUS_KM * ops.arcsin(ops.sqrt(ops.clip(h, 0.0, 1.0)))
        target = ops.softmax(-dist_km / self.tau_km, axis=-1)    # exp(-d / tau), normalised
        per_image = -ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)
        return ops.where(valid, per_image, 0.0)

    def get_config(self):
        return {**super().get_config(), "centers": self.centers.tolist(), "tau_km": self.tau_km}


def _distance_taus(distance_tau_km, partitionings) -> dict:
    """{head name: tau km} from a {name: tau} mapping or a list aligned with the partitionings."""
    names = [p.name for p in partitionings or ()]
    if not names:
        raise InputError("make_losses.distance_tau_km needs the partitionings (their cells' points)")
    if isinstance(distance_tau_km, Mapping):
        taus = {str(k): v for k, v in distance_tau_km.items()}
        unknown = sorted(set(taus) - set(names))
        if unknown:
            raise InputError(f"make_losses.distance_tau_km names {unknown}; the heads are {names}")
    else:
        values = list(distance_tau_km) if isinstance(distance_tau_km, (list, tuple)) else [distance_tau_km] * len(names)
        if len(values) != len(names):
            raise InputError(f"make_losses.distance_tau_km={distance_tau_km!r}: give one tau per partitioning "
                             f"({names}, coarse to fine) or a {{name: tau}} dict")
        taus = dict(zip(names, values))
    for name, tau in taus.items():
        try:
            ok = float(tau) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"make_losses.distance_tau_km: tau {tau!r} for {name!r} must be a distance in km above 0")
    return {k: float(v) for k, v in taus.items()}


@gin.configurable
def make_losses(output_names, label_smoothing: float = 0.0, scene_weight: float = 1.0, distance_tau_km=None,
                partitionings=None):
    """Losses and loss weights for `model.compile`, keyed by output name.

    §3.3: each geo head gets weight 1 / |P| (L_geo^multi is the mean of the single-partitioning
    losses; |P| = 1 gives the baseline's L_geo^single); the MTN scene head gets `scene_weight`
    (1: L_total = L_geo + L_scene).

    Args:
      output_names: the model's outputs.
      label_smoothing: uniform label smoothing of the one-hot targets.
      scene_weight: weight of the MTN scene loss.
      distance_tau_km: None (one-hot targets, the paper), or distance-aware targets
        (`DistanceAwareCrossEntropy`) with tau in km per partitioning: a list coarse to fine, a
        {name: tau} dict (heads left out stay one-hot) or one number for all.
      partitionings: the model's `geoest.geo.Partitioning`s (needed with distance_tau_km).
    Returns:
      (losses, loss_weights): dicts {output name: loss}, {output name: float}.
    """
    geo_heads = [name for name in output_names if name != SCENE_HEAD]
    losses = {name: SparseCrossEntropy(label_smoothing, name=f"{name}_loss") for name in output_names}
    if distance_tau_km is not None:
        centers = {p.name: p.centers for p in partitionings or ()}
        for name, tau in _distance_taus(distance_tau_km, partitionings).items():
            losses[name] = DistanceAwareCrossEntropy(centers[name], tau, name=f"{name}_loss")
    weights = {name: 1.0 / len(geo_heads) for name in geo_heads}
    if SCENE_HEAD in output_names:
        weights[SCENE_HEAD] = float(scene_weight)
    return losses, weights


@gin.configurable
def add_weight_decay(model: keras.Model, weight_decay: float = 1e-4) -> int:
    """§4: weight decay 1e-4 on every convolution and dense kernel (not biases, not batch-norm).

    Added as the penalty weight_decay / 2 * ||w||^2 (gradient weight_decay * w, the convention of
    the TF-slim ResNet the paper's implementation used); Keras adds it to the loss (`model.losses`).
    Returns the number of kernels regularized.
    """
    regularized = 0
    for variable in model.trainable_variables:
        if variable.name.endswith("kernel") and weight_decay:
            variable.regularizer = keras.regularizers.L2(weight_decay / 2.0)
            regularized += 1
    return regularized


@keras.saving.register_keras_serializable(package="geoest")
class Top1Accuracy(keras.metrics.Metric):
    """Fraction of images whose top class is the label; labels < 0 (no class) are left out."""

    def __init__(self, name="top1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        valid = ops.cast(labels >= 0, "float32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32")
        self.correct.assign_add(ops.sum(hits * valid))
        self.total.assign_add(ops.sum(valid))

    def result(self):
        return keras.ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)
