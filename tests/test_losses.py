"""§3.3 losses: mean of per-partitioning cross-entropies, + scene loss for the MTN; weight decay."""
import gin
import numpy as np
import pytest


from geoest.models import SCENE_HEAD, Top1Accuracy, add_weight_decay, build_model, make_losses


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _cross_entropy(logits, labels, smoothing=0.0):
    """Hand-written: -sum(target * log softmax), target = smoothed one-hot; 0 where label < 0."""
    n = logits.shape[-1]
    target = np.eye(n)[np.maximum(labels, 0)] * (1 - smoothing) + smoothing / n
    per_image = -(target * _log_softmax(logits)).sum(axis=-1)
    return np.where(labels >= 0, per_image, 0.0)


def _total_loss(model, images, labels):
    losses, weights = make_losses(model.output_names)
    model.compile(optimizer="sgd", loss=losses, loss_weights=weights)
    return float(model.evaluate(images, labels, batch_size=len(images), verbose=0, return_dict=True)["loss"])


@pytest.mark.parametrize("scene", [False, True])
def test_loss_is_mean_of_geo_cross_entropies_plus_scene(scene):
    rng = np.random.default_rng(0)
    model = build_model({"c": 4, "m": 6, "f": 9}, backbone="tiny", image_size=32, scene_classes=16 if scene else None)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype="uint8")
    labels = {name: rng.integers(0, n, 5) for name, n in (("c", 4), ("m", 6), ("f", 9))}
    if scene:
        labels[SCENE_HEAD] = rng.integers(0, 16, 5)
    logits = {k: np.asarray(v, dtype=np.float64) for k, v in model(images).items()}
    # §3.3: L_geo^multi = mean over partitionings; MTN: L_total = L_geo + L_scene.
    expected = np.mean([_cross_entropy(logits[k], labels[k]).mean() for k in ("c", "m", "f")])
    if scene:
        expected += _cross_entropy(logits[SCENE_HEAD], labels[SCENE_HEAD]).mean()
    assert _total_loss(model, images, labels) == pytest.approx(expected, rel=1e-4)


def test_label_smoothing_and_unknown_labels():
    rng = np.random.default_rng(1)
    model = build_model({"f": 7}, backbone="tiny", image_size=32)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype="uint8")
    labels = {"f": np.array([0, 3, -1, 6, -1, 2])}
    logits = np.asarray(model(images)["f"], dtype=np.float64)
    gin.bind_parameter("make_losses.label_smoothing", 0.1)
    # Images in no cell (label -1) add nothing; the mean is over the whole batch.
    expected = _cross_entropy(logits, labels["f"], smoothing=0.1).sum() / 6
    assert _total_loss(model, images, labels) == pytest.approx(expected, rel=1e-4)


def test_weight_decay_is_half_l2_of_kernels():
    model = build_model({"f": 5}, backbone="tiny", image_size=32, scene_classes=3)
    assert add_weight_decay(model, 1e-4) == 4  # two convolutions, two heads; no biases
    kernels = [v for v in model.trainable_variables if v.name.endswith("kernel")]
    expected = 1e-4 / 2 * sum(float(np.sum(np.square(np.asarray(v)))) for v in kernels)
    assert float(sum(np.asarray(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-5)


def test_top1_leaves_out_unknown_labels():
    metric = Top1Accuracy()
    logits = np.array([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0], [1.0, 0.0]], "float32")
    metric.update_state(np.array([1, 1, -1, 0]), logits)
    assert float(metric.result()) == pytest.approx(2 / 3)


def _haversine_km(a, b):
    a, b = np.radians(a), np.radians(b)
    h = np.sin((b[..., 0] - a[..., 0]) / 2) ** 2 + np.cos(a[..., 0]) * np.cos(b[..., 0]) * np.sin(
        (b[..., 1] - a[..., 1]) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(h))


class _Cells:
    """A stand-in partitioning: a name and its cells' points (what the loss reads)."""

    def __init__(self, name, centers):
        self.name, self.centers = name, np.asarray(centers, np.float64)


def test_distance_aware_targets_are_pigeons_haversine_smoothing():
    rng = np.random.default_rng(2)
    centers = np.array([[48.85, 2.35], [50.85, 4.35], [40.71, -74.0], [35.68, 139.7], [-33.9, 151.2]])
    model = build_model({"f": 5}, backbone="tiny", image_size=32)
    images = rng.uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    labels = {"f": np.array([0, 1, -1, 3, 4, 2])}
    logits = np.asarray(model(images)["f"], dtype=np.float64)
    tau = 500.0
    # exp(-(d(true, c_i) - d(true, c_true)) / tau), normalised; true = the label's cell point
    target = np.exp(-_haversine_km(centers[np.maximum(labels["f"], 0)][:, None], centers[None]) / tau)
    target /= target.sum(axis=1, keepdims=True)
    per_image = np.where(labels["f"] >= 0, -(target * _log_softmax(logits)).sum(axis=1), 0.0)
    losses, weights = make_losses(["f"], distance_tau_km=[tau], partitionings=[_Cells("f", centers)])
    model.compile(optimizer="sgd", loss=losses, loss_weights=weights)
    got = model.evaluate(images, labels, batch_size=6, verbose=0, return_dict=True)["loss"]
    assert got == pytest.approx(per_image.sum() / 6, rel=1e-4)
    # Paris's target gives Brussels (260 km) far more than New York
    assert target[0, 1] > 0.3 and target[0, 2] < 1e-4
    # a tiny tau is one-hot again
    losses, _ = make_losses(["f"], distance_tau_km={"f": 1e-3}, partitionings=[_Cells("f", centers)])
    model.compile(optimizer="sgd", loss=losses, loss_weights=weights)
    one_hot = model.evaluate(images, labels, batch_size=6, verbose=0, return_dict=True)["loss"]
    assert one_hot == pytest.approx(_cross_entropy(logits, labels["f"]).mean(), rel=1e-4)


@pytest.mark.parametrize("taus", [[0.0], [-5.0], {"f": 0}, ["x"], [1.0, 2.0]])
def test_distance_tau_must_be_positive_and_name_heads(taus):
    from geoest.errors import InputError

    with pytest.raises(InputError, match="make_losses.distance_tau_km"):
        make_losses(["f"], distance_tau_km=taus, partitionings=[_Cells("f", [[0.0, 0.0]])])
