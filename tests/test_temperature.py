"""Temperature scaling: the NLL fit recovers a known temperature, with crops and photos in no cell;
p^(1/T) is the softmax at temperature T, in numpy and in TensorFlow."""
import numpy as np
import pytest

from geoest.inference.temperature import _log_softmax, fit_temperature, temper, temper_tf


def _synthetic(temperature, n_images=4000, n_classes=30, crops=1, seed=0):
    """Labels drawn from softmax(logits / T): T is the temperature that calibrates the logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n_images, n_classes))
    probs = np.exp(_log_softmax(logits / temperature))
    labels = (probs.cumsum(axis=1) > rng.uniform(size=(n_images, 1))).argmax(axis=1)
    if crops > 1:   # crops that agree: the mean of their softmax is the softmax of one
        logits = np.repeat(logits[:, None], crops, axis=1)
    return logits, labels


@pytest.mark.parametrize("temperature", [0.4, 1.0, 2.5, 6.0])
def test_known_temperature_is_recovered(temperature):
    logits, labels = _synthetic(temperature)
    assert fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.08)


def test_crops_and_unknown_labels():
    logits, labels = _synthetic(2.0, crops=3)
    labels[::7] = -1      # photos in no cell are left out of the fit
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.08)


def test_temper_matches_softmax_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 9))
    probs = np.exp(_log_softmax(logits))
    np.testing.assert_allclose(temper(probs, 2.0), np.exp(_log_softmax(logits / 2.0)),
                               rtol=1e-9)
    np.testing.assert_allclose(temper_tf(probs, 2.0).numpy(), temper(probs, 2.0),
                               rtol=1e-5)
