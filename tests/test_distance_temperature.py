"""The distance temperature: p^(1/T) in numpy and TensorFlow, fitted so that P(error <= R) is calibrated
(an overconfident model gets T near 2), and stored beside the weights and the model it was fitted for."""
import json

import numpy as np
import pytest

from distance_weights_helpers import (  # noqa: F401 (fixtures)
    distributions, distributions_over_photos, sample_truth, training, weights)
from geoest.errors import InputError
from geoest.geo import great_circle_km
from geoest.geo.distance_temperature import (DISTANCE_TEMPERATURE_FILE, DISTANCE_TEMPERATURES, fit_distance_temperature,
                                             load_distance_temperature, save_distance_temperature, sharpen, sharpen_tf)
from geoest.geo.distance_weights import WITHIN_WEIGHTS_FORMAT, WithinWeights


def test_sharpen_keeps_zeros_and_sums_to_one():
    rng = np.random.default_rng(0)
    probs = distributions(rng, 20, 50)
    probs[rng.uniform(size=probs.shape) < 0.3] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(sharpen(probs, 1.0), probs, rtol=1e-12)
    for t in (0.5, 2.0):
        out = sharpen(probs, t)
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
        assert ((out > 0) == (probs > 0)).all()
    top = probs.max(axis=1)
    assert (sharpen(probs, 0.5).max(axis=1) >= top - 1e-12).all() and (sharpen(probs, 2.0).max(axis=1) <= top + 1e-12).all()


def test_tensorflow_sharpen_equals_numpy():
    import tensorflow as tf

    rng = np.random.default_rng(11)
    probs = sharpen(distributions(rng, 30, 60), rng.uniform(0.5, 2.0))
    probs[rng.uniform(size=probs.shape) < 0.3] = 0.0
    probs[3, 5] = np.nan
    tempered = sharpen_tf(tf.constant(probs), 1.7).numpy()
    np.testing.assert_allclose(np.delete(tempered, 3, 0), np.delete(sharpen(probs, 1.7), 3, 0), rtol=1e-12)


def test_fit_flattens_an_overconfident_model(training, weights):
    """Truth drawn from p, the model states p^2: the temperature of lowest summed Brier score is near 2."""
    fine, lat, lon, classes = training
    rng = np.random.default_rng(8)
    true = distributions_over_photos(rng, 1000, classes, len(fine))
    stated = sharpen(true, 0.5)
    predicted = stated.argmax(axis=1)
    t_lat, t_lon = sample_truth(rng, true, classes, lat, lon)
    points = fine.class2gps("mean")[predicted]
    dist = great_circle_km(points[:, 0], points[:, 1], t_lat, t_lon)
    fit = fit_distance_temperature(weights, stated, predicted, dist)
    assert 1.5 <= fit["temperature"] <= 2.6, fit["temperature"]
    assert fit["photos"] == 1000 and sorted(fit["brier"]) == sorted(DISTANCE_TEMPERATURES)
    assert fit["brier"][fit["temperature"]] == min(fit["brier"].values())


def test_stored_for_its_weights_and_model(tmp_path, training):
    fine, *_ = training
    weights = WithinWeights.from_means(fine)
    assert load_distance_temperature(tmp_path, weights, "a" * 64) is None
    path = save_distance_temperature(tmp_path, 1.4, weights, "a" * 64)
    assert path == tmp_path / DISTANCE_TEMPERATURE_FILE
    assert json.loads(path.read_text()) == {"format": WITHIN_WEIGHTS_FORMAT, "temperature": 1.4,
                                            "weights": weights.digest, "model": "a" * 64}
    assert load_distance_temperature(tmp_path, weights, "a" * 64) == 1.4
    with pytest.raises(InputError, match="fitted for other distance weights or another model file"):
        load_distance_temperature(tmp_path, weights, "b" * 64)
    path.write_text("{")
    with pytest.raises(InputError, match="not a distance temperature written by geoest"):
        load_distance_temperature(tmp_path, weights, "a" * 64)
    save_distance_temperature(tmp_path, 0.0, weights, "a" * 64)
    with pytest.raises(InputError, match="must be above 0"):
        load_distance_temperature(tmp_path, weights, "a" * 64)
