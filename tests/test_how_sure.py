"""How sure the answers are: the figures of the distance events, R_p, ranking and back-off on sampled
truth (`how_sure_figures`, `photo_scores`, `evaluation_figures`), their lines, and the monotone map."""
import numpy as np
import pytest

from distance_weights_helpers import (  # noqa: F401 (fixtures)
    distributions, distributions_over_photos, sample_truth, training, weights)
from geoest.geo import great_circle_km
from geoest.geo.back_off import finest_level_reaching
from geoest.geo.distance_temperature import sharpen
from geoest.geo.how_sure import (apply_monotone, evaluation_figures, evaluation_lines, fit_monotone, how_sure_figures,
                                 how_sure_lines, photo_scores)


def test_how_sure_figures_calibrate_an_overconfident_model(training, weights):
    """Truth drawn from p, the model states p^2 (overconfident): the distance temperature found on
    validation flattens it back (T near 2) and the test ECE of P(error <= R) falls to the noise floor."""
    fine, lat, lon, classes = training
    rng = np.random.default_rng(5)
    has_photos = np.bincount(classes[classes >= 0], minlength=len(fine)) > 0

    def split(size):
        true = distributions(rng, size, len(fine))
        true[:, ~has_photos] = 0.0
        true /= true.sum(axis=1, keepdims=True)
        stated = sharpen(true, 0.5)
        predicted = stated.argmax(axis=1)
        t_lat, t_lon = sample_truth(rng, true, classes, lat, lon)
        points = fine.class2gps("mean")[predicted]
        return {"probs": stated, "predicted": predicted,
                "dist_km": great_circle_km(points[:, 0], points[:, 1], t_lat, t_lon), "truth": true}

    validation, test = split(1500), split(1500)
    figures = how_sure_figures(weights, test, validation, draws=50)
    assert 1.5 <= figures["distance_temperature"] <= 2.6, figures["distance_temperature"]
    for radius in ("25", "200"):
        by = figures["events"][radius]
        assert by["distance"]["ece"] < by["temperatures"]["ece"], (radius, by)
        assert by["distance"]["ece"] <= 0.05, (radius, by)
        assert abs(by["distance"]["predicted"] - by["distance"]["observed"]) < 0.03, (radius, by)
    for p, target in (("50", 0.5), ("90", 0.9)):
        assert abs(figures["radius"]["distance"][p]["coverage"] - target) <= 0.04, figures["radius"]
    ranked = figures["ranking"]["25"]
    assert ranked["half"] > ranked["all"] and ranked["area"] > ranked["random_area_high"]
    levels = figures["back_off"]["levels"]
    assert abs(sum(f["answered"] for f in levels.values()) + figures["back_off"]["no_answer"] - 1.0) < 1e-9
    for f in levels.values():                     # calibrated: what is answered at q = 0.5 is mostly right
        assert f["accuracy"] is None or f["accuracy"] >= 0.45, levels
    assert len(how_sure_lines(figures)) >= 6


def test_monotone_map_is_non_decreasing_and_fits_the_rate():
    rng = np.random.default_rng(2)
    score = rng.uniform(size=3000)
    hit = rng.uniform(size=3000) < score ** 2          # the true rate is score^2
    knots = fit_monotone(score, hit)
    mapped = apply_monotone(knots, np.linspace(0, 1, 50))
    assert np.all(np.diff(mapped) >= -1e-12)
    assert abs(apply_monotone(knots, [0.5])[0] - 0.25) < 0.1


def test_evaluation_figures_on_sampled_truth(training, weights):
    """Truth drawn from the model's own distribution, 10 % of the photos moved into no cell (the open
    ocean): P(error <= R) calibrated on the photos in a cell, R_p covering p of them, the cell sets
    holding p of the photos in a cell (none of those in no cell), the photos in no cell reported
    apart, ranking above the random band and below the oracle, back-off shares adding up."""
    fine, lat, lon, classes = training
    rng = np.random.default_rng(21)
    n = 3000
    probs = distributions_over_photos(rng, n, classes, len(fine))
    predicted = probs.argmax(axis=1)
    true_lat, true_lon = sample_truth(rng, probs, classes, lat, lon)
    lost = rng.uniform(size=n) < 0.1
    true_lat[lost], true_lon[lost] = -50.0, -130.0          # the South Pacific: no training photo, no cell
    truth = fine.assign(true_lat, true_lon)
    assert (truth[lost] < 0).all() and (truth[~lost] >= 0).all()
    masses = (0.5, 0.9)
    scores = {"model": photo_scores(weights, probs, predicted, truth, true_lat, true_lon, masses)}
    got = evaluation_figures(scores, masses, min_confidence=0.4, draws=50)
    assert got["photos"] == n and got["in_no_cell"] == pytest.approx(lost.mean())
    assert set(got["events"]) == {"1", "25", "200", "750", "2500"} and set(got["radius"]["model"]) == {"50", "90"}
    inside = {"model": {k: v[~lost] for k, v in scores["model"].items()}}
    clean = evaluation_figures(inside, masses, min_confidence=0.4, draws=50)
    for radius, by in clean["events"].items():
        assert by["model"]["ece"] < 0.04 and abs(by["model"]["predicted"] - by["model"]["observed"]) < 0.025, radius
    for key, p in (("50", 0.5), ("90", 0.9)):
        assert abs(clean["radius"]["model"][key]["coverage"] - p) <= 0.03      # 2,700 photos: sd about 1 point
        cells = got["radius"]["model"][key]
        assert cells["cell_coverage_in_a_cell"] >= p - 0.03        # the set holds at least p of the probability
        assert cells["cell_coverage"] == pytest.approx(cells["cell_coverage_in_a_cell"] * (1 - lost.mean()))
    for r in got["ranking"].values():
        assert r["oracle_area"] >= r["area"]
    assert got["ranking"]["25"]["area"] > got["ranking"]["25"]["random_area_high"]
    levels = got["back_off"]["levels"]
    assert list(levels) == ["coarse", "middle", "fine"] and [v["radius_km"] for v in levels.values()] == [750, 200, 25]
    assert sum(v["answered"] for v in levels.values()) + got["back_off"]["no_answer"] == pytest.approx(1.0)
    expected = finest_level_reaching(scores["model"]["p_within"][:, [3, 2, 1]], 0.4)
    assert levels["fine"]["answered"] == pytest.approx(np.mean(expected == 2))
    assert len(evaluation_lines(got)) == 1 + 5 + 1 + 5 + 1
