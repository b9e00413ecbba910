"""P(error <= R) and R_p from each cell's training photos, on hand-made and sampled distributions.

The sampled tests draw true locations from the model's own distribution: the true cell from f*, then a
training photo of that cell. A score built from the same weights is then calibrated by construction,
so its ECE must sit at the noise floor of a perfectly calibrated score (Bernoulli outcomes drawn
from the score itself), and R_p must hold p of the photos.
"""
import numpy as np
import pytest

from geoest.errors import InputError
from geoest.geo import confidence as conf
from geoest.geo import great_circle_km
from geoest.geo import within
from inference_helpers import clustered_points, partitionings

PHOTOS = 4000


@pytest.fixture(scope="module")
def training():
    lat, lon = clustered_points(3000, 0)
    fine = partitionings(3000)[-1]
    return fine, lat, lon, fine.assign(lat, lon)


@pytest.fixture(scope="module")
def weights(training):
    fine, lat, lon, _ = training
    return within.WithinWeights.build(fine, lat, lon)


def _distributions(rng, batch, n):
    logits = rng.normal(size=(batch, n)) * rng.uniform(0.5, 4.0, size=(batch, 1))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def _sample_truth(rng, probs, classes, lat, lon):
    """True cell from each row of probs, then one training photo of that cell: ([B] lat, [B] lon)."""
    cum = np.cumsum(probs, axis=1)
    cell = (cum < rng.uniform(size=(len(probs), 1)) * cum[:, -1:]).sum(axis=1)
    members = [np.flatnonzero(classes == c) for c in range(probs.shape[1])]
    pick = np.array([rng.choice(members[c]) for c in cell.tolist()])
    return lat[pick], lon[pick]


def _ece_noise_floor(rng, score, draws=20):
    return max(conf.expected_calibration_error(score, rng.uniform(size=score.shape) < score) for _ in range(draws))


def test_sampled_truth_calibrated_and_radius_covers(training, weights):
    fine, lat, lon, classes = training
    rng = np.random.default_rng(1)
    probs = _distributions(rng, PHOTOS, len(fine))
    probs[:, np.bincount(classes[classes >= 0], minlength=len(fine)) == 0] = 0.0   # cells with photos only
    probs /= probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    true_lat, true_lon = _sample_truth(rng, probs, classes, lat, lon)
    points = fine.class2gps("mean")[predicted]
    err = great_circle_km(points[:, 0], points[:, 1], true_lat, true_lon)
    scores = weights.within(probs, predicted, within.THRESHOLDS_KM)
    for k, radius in enumerate(within.THRESHOLDS_KM):
        score = scores[:, k]
        ece = conf.expected_calibration_error(score, err <= radius)
        floor = _ece_noise_floor(rng, score)
        assert ece <= floor + 0.01, (radius, ece, floor)
        assert abs(score.mean() - (err <= radius).mean()) < 0.02, radius
    radii = weights.radius(probs, predicted, (0.5, 0.9))
    for k, p in enumerate((0.5, 0.9)):
        covered = float(np.mean(err <= radii[:, k]))
        assert abs(covered - p) <= 0.02, (p, covered)


def test_one_cell_distribution_gives_that_cells_photo_spread(training, weights):
    fine, lat, lon, classes = training
    counts = np.bincount(classes[classes >= 0], minlength=len(fine))
    cells = np.argsort(-counts)[:5]
    probs = np.zeros((len(cells), len(fine)))
    probs[np.arange(len(cells)), cells] = 1.0
    radii = (1.0, 10.0, 25.0, 200.0, 750.0, 2500.0)
    got = weights.within(probs, cells, radii)
    points = fine.class2gps("mean")
    for row, c in enumerate(cells.tolist()):
        members = classes == c
        dist = great_circle_km(points[c, 0], points[c, 1], lat[members], lon[members])
        expected = [(dist <= r).mean() for r in radii]
        np.testing.assert_allclose(got[row], expected, atol=0.03)


def test_hand_made_two_cells(training, weights):
    """Half the mass on the predicted cell, half on a far one: P(error <= R) is half the photo spread."""
    fine, lat, lon, classes = training
    points = fine.class2gps("mean")
    counts = np.bincount(classes[classes >= 0], minlength=len(fine))
    a = int(np.argmax(counts))
    far = great_circle_km(points[a, 0], points[a, 1], points[:, 0], points[:, 1])
    b = int(np.argmax(np.where(counts > 0, far, -1)))
    probs = np.zeros((1, len(fine)))
    probs[0, [a, b]] = 0.5
    one = np.zeros((1, len(fine)))
    one[0, a] = 1.0
    small = weights.within(probs, [a], (25.0,))[0, 0]
    assert small == pytest.approx(0.5 * weights.within(one, [a], (25.0,))[0, 0], abs=1e-6)
    assert weights.within(probs, [a], (within.HALF_CIRCUMFERENCE_KM,))[0, 0] == pytest.approx(1.0)
    # R_0.5 of the pair stays around the predicted cell; R_0.9 reaches the far cell
    r50, r90 = weights.radius(probs, [a], (0.5, 0.9))[0]
    assert weights.within(probs, [a], (r50,))[0, 0] >= 0.5 - 1e-9
    assert r50 < 0.1 * far[b] < 0.5 * far[b] <= r90


def test_within_is_monotone_and_radius_is_its_quantile(training, weights):
    fine, *_ = training
    rng = np.random.default_rng(3)
    probs = _distributions(rng, 300, len(fine))
    predicted = probs.argmax(axis=1)
    table = weights.within(probs, predicted)
    assert (np.diff(table, axis=1) >= 0).all() and (table >= 0).all() and (table <= 1 + 1e-9).all()
    for p in (0.3, 0.5, 0.9):
        r = weights.radius(probs, predicted, (p,))[:, 0]
        at = np.array([weights.within(probs[i:i + 1], predicted[i:i + 1], (r[i],))[0, 0] for i in range(50)])
        assert (at >= p - 1e-6).all()
        smaller = np.array([weights.within(probs[i:i + 1], predicted[i:i + 1], (0.97 * r[i],))[0, 0]
                            for i in range(50)])
        assert (smaller <= p + 1e-6).all()


def test_cell_means_fallback_and_round_trip(tmp_path, training, weights):
    fine, *_ = training
    means = within.WithinWeights.from_means(fine)
    one = np.eye(len(fine))[:3]
    # all photos at the cell's mean, the answered point: within every radius
    np.testing.assert_allclose(means.within(one, [0, 1, 2], (1.0, 25.0)), 1.0)
    path = weights.save(tmp_path)
    again = within.WithinWeights.load(path, fine)
    rng = np.random.default_rng(4)
    probs = _distributions(rng, 20, len(fine))
    np.testing.assert_allclose(again.within(probs, probs.argmax(1)), weights.within(probs, probs.argmax(1)),
                               atol=1e-6)
    other = partitionings(3000, seed=1)[-1]
    with pytest.raises(InputError, match="other cells"):
        within.WithinWeights.load(path, other)
    (tmp_path / "junk.npz").write_bytes(b"no")
    with pytest.raises(InputError, match="junk.npz"):
        within.WithinWeights.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="no distance weights"):
        within.WithinWeights.load(tmp_path / "missing")


def test_back_off_picks_the_finest_level_reaching_q():
    # levels coarse (750 km), middle (200 km), fine (25 km)
    scores = np.array([[0.9, 0.7, 0.2], [0.9, 0.3, 0.1], [0.4, 0.2, 0.1], [0.95, 0.9, 0.8]])
    np.testing.assert_array_equal(within.back_off(scores, 0.5), [1, 0, -1, 2])
    np.testing.assert_array_equal(within.back_off(scores, 0.0), [2, 2, 2, 2])


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), "x"])
def test_bad_radius_named(bad):
    with pytest.raises(InputError, match="--within_km"):
        within.check_radii([bad], "--within_km")


@pytest.mark.parametrize("call,named", [
    (lambda w, p, a: w.within(p, a, [25.0, -5.0]), "R=-5.0"),
    (lambda w, p, a: w.within(p, a, 0.0), "R=0.0"),
    (lambda w, p, a: w.radius(p, a, (0.5, 1.0)), "p=1.0"),
    (lambda w, p, a: w.radius(p, a, np.array([0.0])), "p=0.0"),
    (lambda w, p, a: w.radius(p, a, [float("nan")]), "p=nan"),
    (lambda w, p, a: within.quantile_radius(w.radii_km, w.within(p, a), [-0.2]), "p=-0.2"),
    (lambda w, p, a: within.back_off(w.within(p, a, (750.0, 200.0, 25.0)), 1.5), "q=1.5"),
    (lambda w, p, a: within.back_off(w.within(p, a, (750.0, 200.0, 25.0)), -0.1), "q=-0.1"),
    (lambda w, p, a: w.outputs_tf(p, a, (25.0,), (0.5, 2.0)), "p=2.0"),
])
def test_bad_p_r_q_refused_in_one_line_naming_the_value(training, weights, call, named):
    """p outside (0, 1), R <= 0 and q outside [0, 1] are refused, the message naming the value."""
    fine, *_ = training
    probs = _distributions(np.random.default_rng(2), 2, len(fine))
    with pytest.raises(InputError) as raised:
        call(weights, probs, probs.argmax(axis=1))
    message = str(raised.value)
    assert message.startswith(named) and "\n" not in message


def test_names():
    assert within.within_key(25.0) == "p_within_25km"
    assert within.within_key(2.5) == "p_within_2_5km"
    assert within.radius_key(0.9) == "radius_km_90"


def _run_main(*args):
    import os
    import pathlib
    import subprocess
    import sys

    repo = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "geoest.within_weights", *args], capture_output=True, text=True,
                          cwd=repo, env=env, timeout=300)


def test_main_writes_weights_that_load_for_the_partitioning(tmp_path, training, weights):
    fine, lat, lon, _ = training
    meta = tmp_path / "train.csv"
    rows = (f"{k}.jpg,{float(a)!r},{float(b)!r}\n" for k, (a, b) in enumerate(zip(lat, lon)))
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(rows))
    fine.to_csv(tmp_path / "fine.csv")
    result = _run_main(f"--meta_csv={meta}", f"--partitioning={tmp_path / 'fine.csv'}", f"--output={tmp_path}")
    assert result.returncode == 0, result.stderr
    loaded = within.WithinWeights.load(tmp_path, fine)
    probs = np.eye(len(fine))[:4]
    np.testing.assert_allclose(loaded.within(probs, [0, 1, 2, 3]), weights.within(probs, [0, 1, 2, 3]), atol=1e-6)
    bad = _run_main(f"--meta_csv={meta}", f"--partitioning={tmp_path / 'fine.csv'}", f"--output={tmp_path / 'no'}")
    assert bad.returncode == 2 and bad.stderr.splitlines() == [f"error: --output={tmp_path / 'no'}: not a folder"]


def test_cap_holds_for_every_output(training, weights):
    """Seeded random sweep: under a cap K no radius is below K and no P(error <= R) is stated for R < K;
    what is stated equals the uncapped value and R_p still holds p."""
    fine, *_ = training
    rng = np.random.default_rng(5)
    radii = within.THRESHOLDS_KM
    for _ in range(25):
        cap = float(np.exp(rng.uniform(np.log(1.0), np.log(3000.0))))
        probs = _distributions(rng, 40, len(fine))
        predicted = rng.integers(len(fine), size=40)
        masses = tuple(np.sort(rng.uniform(0.05, 0.95, size=2)))
        capped = weights.within(probs, predicted, radii, max_resolution_km=cap)
        free = weights.within(probs, predicted, radii)
        below = np.asarray(radii) < cap
        assert np.isnan(capped[:, below]).all()
        np.testing.assert_array_equal(capped[:, ~below], free[:, ~below])
        r = weights.radius(probs, predicted, masses, max_resolution_km=cap)
        assert (r >= cap).all()
        for k, p in enumerate(masses):
            at = np.array([weights.within(probs[i:i + 1], predicted[i:i + 1], (r[i, k],))[0, 0] for i in range(40)])
            assert (at >= p - 1e-6).all()


def test_ranking_by_p_within_beats_random_on_sampled_truth(training, weights):
    fine, lat, lon, classes = training
    rng = np.random.default_rng(6)
    probs = _distributions(rng, 1500, len(fine))
    probs[:, np.bincount(classes[classes >= 0], minlength=len(fine)) == 0] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    true_lat, true_lon = _sample_truth(rng, probs, classes, lat, lon)
    points = fine.class2gps("mean")[predicted]
    err = great_circle_km(points[:, 0], points[:, 1], true_lat, true_lon)
    score = weights.within(probs, predicted, (25.0,))[:, 0]
    curves = within.ranking_curves(err, score, 25.0, draws=50)
    assert curves["area"] > curves["random_area_high"]
    assert curves["oracle_area"] >= curves["area"]
    assert curves["half"] > curves["all"]
    assert curves["oracle"][-1] == pytest.approx(curves["all"]) == pytest.approx(curves["accuracy"][-1])
    assert (curves["random_low"] <= curves["random_high"]).all()
    # a score unrelated to the error stays inside the band
    noise = within.ranking_curves(err, rng.uniform(size=len(err)), 25.0, draws=50)
    assert noise["area"] < curves["area"]


def test_nan_photo_gives_nan_and_leaves_the_others(training, weights):
    fine, *_ = training
    probs = _distributions(np.random.default_rng(7), 3, len(fine))
    bad = probs.copy()
    bad[1, 4] = np.nan
    predicted = probs.argmax(axis=1)
    got, want = weights.within(bad, predicted), weights.within(probs, predicted)
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[[0, 2]], want[[0, 2]])
    r = weights.radius(bad, predicted, (0.5,))
    assert np.isnan(r[1, 0]) and np.isfinite(r[[0, 2], 0]).all()


def test_how_sure_figures_calibrate_an_overconfident_model(training, weights):
    """Truth drawn from p, the model states p^2 (overconfident): the distance temperature found on
    validation flattens it back (T near 2) and the test ECE of P(error <= R) falls to the noise floor."""
    fine, lat, lon, classes = training
    rng = np.random.default_rng(5)
    has_photos = np.bincount(classes[classes >= 0], minlength=len(fine)) > 0

    def split(size):
        true = _distributions(rng, size, len(fine))
        true[:, ~has_photos] = 0.0
        true /= true.sum(axis=1, keepdims=True)
        stated = within.sharpen(true, 0.5)
        predicted = stated.argmax(axis=1)
        t_lat, t_lon = _sample_truth(rng, true, classes, lat, lon)
        points = fine.class2gps("mean")[predicted]
        return {"probs": stated, "predicted": predicted,
                "dist_km": great_circle_km(points[:, 0], points[:, 1], t_lat, t_lon), "truth": true}

    validation, test = split(1500), split(1500)
    figures = within.how_sure_figures(weights, test, validation, draws=50)
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
    assert len(within.how_sure_lines(figures)) >= 6


def test_monotone_map_is_non_decreasing_and_fits_the_rate():
    rng = np.random.default_rng(2)
    score = rng.uniform(size=3000)
    hit = rng.uniform(size=3000) < score ** 2          # the true rate is score^2
    knots = within.fit_monotone(score, hit)
    mapped = within.apply_monotone(knots, np.linspace(0, 1, 50))
    assert np.all(np.diff(mapped) >= -1e-12)
    assert abs(within.apply_monotone(knots, [0.5])[0] - 0.25) < 0.1


def test_tensorflow_outputs_equal_numpy_and_hold_the_cap(training, weights):
    """Seeded random sweep of `outputs_tf` (the SavedModel's ops) against `within` / `radius`, with
    and without a cap K, NaN photos and the distance temperature: equal within 1e-9, and under a cap no
    radius below K and no P(error <= R) stated for R < K."""
    import tensorflow as tf

    fine, *_ = training
    rng = np.random.default_rng(11)
    radii, masses = within.THRESHOLDS_KM, (0.5, 0.9)
    compute = tf.function(lambda p, a, cap: weights.outputs_tf(p, a, radii, masses, cap), reduce_retracing=True)
    for trial in range(8):
        cap = None if trial % 4 == 0 else float(np.exp(rng.uniform(np.log(1.0), np.log(3000.0))))
        probs = within.sharpen(_distributions(rng, 30, len(fine)), rng.uniform(0.5, 2.0))
        probs[rng.uniform(size=probs.shape) < 0.3] = 0.0
        probs[3, 5] = np.nan
        predicted = rng.integers(len(fine), size=30)
        got = {k: v.numpy() for k, v in weights.outputs_tf(tf.constant(probs, tf.float32), tf.constant(predicted),
                                                           radii, masses, cap).items()}
        if trial == 1:     # the same ops traced into a graph
            traced = {k: v.numpy() for k, v in compute(tf.constant(probs), tf.constant(predicted), cap).items()}
            for k in got:
                np.testing.assert_allclose(traced[k], got[k], rtol=1e-6, atol=1e-7)
        f32 = probs.astype(np.float32)
        p_within = weights.within(f32, predicted, radii, max_resolution_km=cap)
        r = weights.radius(f32, predicted, masses, max_resolution_km=cap)
        for k, radius in enumerate(radii):
            np.testing.assert_allclose(got[within.within_key(radius)], p_within[:, k], rtol=1e-9, atol=1e-12)
            if cap is not None and radius < cap:
                assert np.isnan(got[within.within_key(radius)]).all()
        for j, p in enumerate(masses):
            np.testing.assert_allclose(got[within.radius_key(p)], r[:, j], rtol=1e-9)
            assert np.isnan(got[within.radius_key(p)][3])
            if cap is not None:
                assert (np.delete(got[within.radius_key(p)], 3) >= cap).all()
    tempered = within.sharpen_tf(tf.constant(probs), 1.7).numpy()
    np.testing.assert_allclose(np.delete(tempered, 3, 0), np.delete(within.sharpen(probs, 1.7), 3, 0), rtol=1e-12)


def test_evaluation_figures_on_sampled_truth(training, weights):
    """Truth drawn from the model's own distribution, 10 % of the photos moved into no cell (the open
    ocean): P(error <= R) calibrated on the photos in a cell, R_p covering p of them, the cell sets
    holding p of the photos in a cell (none of those in no cell), the photos in no cell reported
    apart, ranking above the random band and below the oracle, back-off shares adding up."""
    fine, lat, lon, classes = training
    rng = np.random.default_rng(21)
    n = 3000
    probs = _distributions(rng, n, len(fine))
    probs[:, np.bincount(classes[classes >= 0], minlength=len(fine)) == 0] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    true_lat, true_lon = _sample_truth(rng, probs, classes, lat, lon)
    lost = rng.uniform(size=n) < 0.1
    true_lat[lost], true_lon[lost] = -50.0, -130.0          # the South Pacific: no training photo, no cell
    truth = fine.assign(true_lat, true_lon)
    assert (truth[lost] < 0).all() and (truth[~lost] >= 0).all()
    masses = (0.5, 0.9)
    scores = {"model": within.photo_scores(weights, probs, predicted, truth, true_lat, true_lon, masses)}
    got = within.evaluation_figures(scores, masses, min_confidence=0.4, draws=50)
    assert got["photos"] == n and got["in_no_cell"] == pytest.approx(lost.mean())
    assert set(got["events"]) == {"1", "25", "200", "750", "2500"} and set(got["radius"]["model"]) == {"50", "90"}
    inside = {"model": {k: v[~lost] for k, v in scores["model"].items()}}
    clean = within.evaluation_figures(inside, masses, min_confidence=0.4, draws=50)
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
    expected = within.back_off(scores["model"]["p_within"][:, [3, 2, 1]], 0.4)
    assert levels["fine"]["answered"] == pytest.approx(np.mean(expected == 2))
    assert len(within.evaluation_lines(got)) == 1 + 5 + 1 + 5 + 1
