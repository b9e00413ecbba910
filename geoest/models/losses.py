"""§3.3 losses: L_geo^multi = mean over partitionings of the cross-entropies; MTN: L_total = L_geo + L_scene.

§4 weight decay 1e-4 is added as an L2 penalty on the kernels (see `add_weight_decay`).
"""
import gin
import keras

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


@gin.configurable
def make_losses(output_names, label_smoothing: float = 0.0, scene_weight: float = 1.0):
    """Losses and loss weights for `model.compile`, keyed by output name.

    §3.3: each geo head gets weight 1 / |P| (L_geo^multi is the mean of the single-partitioning
    losses; |P| = 1 gives the baseline's L_geo^single); the MTN scene head gets `scene_weight`
    (1: L_total = L_geo + L_scene).

    Returns:
      (losses, loss_weights): dicts {output name: SparseCrossEntropy}, {output name: float}.
    """
    geo_heads = [name for name in output_names if name != SCENE_HEAD]
    losses = {name: SparseCrossEntropy(label_smoothing, name=f"{name}_loss") for name in output_names}
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
