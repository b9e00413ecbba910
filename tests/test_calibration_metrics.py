"""Scores of many answers: ECE, accuracy-coverage and the ranking curves beside random orders and the oracle."""
import numpy as np
import pytest

from distance_weights_helpers import distributions_over_photos, sample_truth, training, weights  # noqa: F401 (fixtures)
from geoest.geo import great_circle_km
from geoest.geo.calibration_metrics import (accuracy_coverage, accuracy_of_most_confident, expected_calibration_error,
                                            ranking_curves)


def test_scores():
    confidence = np.array([0.9, 0.8, 0.3, 0.1])
    correct = np.array([1, 1, 0, 0], bool)
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(
        (0.1 + 0.2 + 0.3 + 0.1) / 4)
    curve = accuracy_coverage(np.array([1.0, 30.0, 10.0, 5000.0]), confidence, (25,))
    np.testing.assert_allclose(curve["accuracy"][25], [1, 0.5, 2 / 3, 0.5])
    assert curve["area"][25] == pytest.approx(np.mean([1, 0.5, 2 / 3, 0.5]))
    assert accuracy_of_most_confident([1.0, 30.0, 10.0, 5000.0], confidence, 0.5, 25) == 0.5


def test_ranking_by_p_within_beats_random_on_sampled_truth(training, weights):
    fine, lat, lon, classes = training
    rng = np.random.default_rng(6)
    probs = distributions_over_photos(rng, 1500, classes, len(fine))
    predicted = probs.argmax(axis=1)
    true_lat, true_lon = sample_truth(rng, probs, classes, lat, lon)
    points = fine.class2gps("mean")[predicted]
    err = great_circle_km(points[:, 0], points[:, 1], true_lat, true_lon)
    score = weights.within(probs, predicted, (25.0,))[:, 0]
    curves = ranking_curves(err, score, 25.0, draws=50)
    assert curves["area"] > curves["random_area_high"]
    assert curves["oracle_area"] >= curves["area"]
    assert curves["half"] > curves["all"]
    assert curves["oracle"][-1] == pytest.approx(curves["all"]) == pytest.approx(curves["accuracy"][-1])
    assert (curves["random_low"] <= curves["random_high"]).all()
    # a score unrelated to the error stays inside the band
    noise = ranking_curves(err, rng.uniform(size=len(err)), 25.0, draws=50)
    assert noise["area"] < curves["area"]
