"""P(error <= R) and R_p from each cell's training photos (W_R), on hand-made and sampled distributions,
in numpy and TensorFlow, stored and loaded, and written by python -m geoest.within_weights."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from distance_weights_helpers import (  # noqa: F401
    distributions, distributions_over_photos, ece_noise_floor, sample_truth, training, weights)
from geoest.errors import InputError
from geoest.geo import great_circle_km
from geoest.geo.calibration_metrics import expected_calibration_error
from geoest.geo.distance import THRESHOLDS_KM
from geoest.geo.distance_temperature import sharpen
from geoest.geo.distance_weights import HALF_CIRCUMFERENCE_KM, WithinWeights, quantile_radius, radius_key, within_key
from inference_helpers import partitionings

PHOTOS = 4000


def test_sampled_truth_calibrated_and_radius_covers(training, weights):
    fine, lat, lon, classes = training
    rng = np.random.default_rng(1)
    probs = distributions_over_photos(rng, PHOTOS, classes, len(fine))
    predicted = probs.argmax(axis=1)
    true_lat, true_lon = sample_truth(rng, probs, classes, lat, lon)
    points = fine.class2gps("mean")[predicted]
    err = great_circle_km(points[:, 0], points[:, 1], true_lat, true_lon)
    scores = weights.within(probs, predicted, THRESHOLDS_KM)
    for k, radius in enumerate(THRESHOLDS_KM):
        score = scores[:, k]
        ece = expected_calibration_error(score, err <= radius)
        floor = ece_noise_floor(rng, score)
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
    assert weights.within(probs, [a], (HALF_CIRCUMFERENCE_KM,))[0, 0] == pytest.approx(1.0)
    # R_0.5 of the pair stays around the predicted cell; R_0.9 reaches the far cell
    r50, r90 = weights.radius(probs, [a], (0.5, 0.9))[0]
    assert weights.within(probs, [a], (r50,))[0, 0] >= 0.5 - 1e-9
    assert r50 < 0.1 * far[b] < 0.5 * far[b] <= r90


def test_within_is_monotone_and_radius_is_its_quantile(training, weights):
    fine, *_ = training
    rng = np.random.default_rng(3)
    probs = distributions(rng, 300, len(fine))
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
    means = WithinWeights.from_means(fine)
    one = np.eye(len(fine))[:3]
    # all photos at the cell's mean, the answered point: within every radius
    np.testing.assert_allclose(means.within(one, [0, 1, 2], (1.0, 25.0)), 1.0)
    path = weights.save(tmp_path)
    again = WithinWeights.load(path, fine)
    rng = np.random.default_rng(4)
    probs = distributions(rng, 20, len(fine))
    np.testing.assert_allclose(again.within(probs, probs.argmax(1)), weights.within(probs, probs.argmax(1)),
                               atol=1e-6)
    other = partitionings(3000, seed=1)[-1]
    with pytest.raises(InputError, match="other cells"):
        WithinWeights.load(path, other)
    (tmp_path / "junk.npz").write_bytes(b"no")
    with pytest.raises(InputError, match="junk.npz"):
        WithinWeights.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="no distance weights"):
        WithinWeights.load(tmp_path / "missing")


@pytest.mark.parametrize("call,named", [
    (lambda w, p, a: w.within(p, a, [25.0, -5.0]), "R=-5.0"),
    (lambda w, p, a: w.within(p, a, 0.0), "R=0.0"),
    (lambda w, p, a: w.radius(p, a, (0.5, 1.0)), "p=1.0"),
    (lambda w, p, a: w.radius(p, a, np.array([0.0])), "p=0.0"),
    (lambda w, p, a: w.radius(p, a, [float("nan")]), "p=nan"),
    (lambda w, p, a: quantile_radius(w.radii_km, w.within(p, a), [-0.2]), "p=-0.2"),
    (lambda w, p, a: w.outputs_tf(p, a, (25.0,), (0.5, 2.0)), "p=2.0"),
])
def test_bad_p_r_refused_in_one_line_naming_the_value(training, weights, call, named):
    """p outside (0, 1) and R <= 0 are refused, the message naming the value (q: tests/test_back_off.py)."""
    fine, *_ = training
    probs = distributions(np.random.default_rng(2), 2, len(fine))
    with pytest.raises(InputError) as raised:
        call(weights, probs, probs.argmax(axis=1))
    message = str(raised.value)
    assert message.startswith(named) and "\n" not in message


def test_names():
    assert within_key(25.0) == "p_within_25km"
    assert within_key(2.5) == "p_within_2_5km"
    assert radius_key(0.9) == "radius_km_90"


def _run_main(*args):
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
    loaded = WithinWeights.load(tmp_path, fine)
    probs = np.eye(len(fine))[:4]
    np.testing.assert_allclose(loaded.within(probs, [0, 1, 2, 3]), weights.within(probs, [0, 1, 2, 3]), atol=1e-6)
    bad = _run_main(f"--meta_csv={meta}", f"--partitioning={tmp_path / 'fine.csv'}", f"--output={tmp_path / 'no'}")
    assert bad.returncode == 2 and bad.stderr.splitlines() == [f"error: --output={tmp_path / 'no'}: not a folder"]


def test_cap_holds_for_every_output(training, weights):
    """Seeded random sweep: under a cap K no radius is below K and no P(error <= R) is stated for R < K;
    what is stated equals the uncapped value and R_p still holds p."""
    fine, *_ = training
    rng = np.random.default_rng(5)
    radii = THRESHOLDS_KM
    for _ in range(25):
        cap = float(np.exp(rng.uniform(np.log(1.0), np.log(3000.0))))
        probs = distributions(rng, 40, len(fine))
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


def test_nan_photo_gives_nan_and_leaves_the_others(training, weights):
    fine, *_ = training
    probs = distributions(np.random.default_rng(7), 3, len(fine))
    bad = probs.copy()
    bad[1, 4] = np.nan
    predicted = probs.argmax(axis=1)
    got, want = weights.within(bad, predicted), weights.within(probs, predicted)
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[[0, 2]], want[[0, 2]])
    r = weights.radius(bad, predicted, (0.5,))
    assert np.isnan(r[1, 0]) and np.isfinite(r[[0, 2], 0]).all()


def test_tensorflow_outputs_equal_numpy_and_hold_the_cap(training, weights):
    """Seeded random sweep of `outputs_tf` (the SavedModel's ops) against `within` / `radius`, with
    and without a cap K, NaN photos and the distance temperature: equal within 1e-9, and under a cap no
    radius below K and no P(error <= R) stated for R < K."""
    import tensorflow as tf

    fine, *_ = training
    rng = np.random.default_rng(11)
    radii, masses = THRESHOLDS_KM, (0.5, 0.9)
    compute = tf.function(lambda p, a, cap: weights.outputs_tf(p, a, radii, masses, cap), reduce_retracing=True)
    for trial in range(8):
        cap = None if trial % 4 == 0 else float(np.exp(rng.uniform(np.log(1.0), np.log(3000.0))))
        probs = sharpen(distributions(rng, 30, len(fine)), rng.uniform(0.5, 2.0))
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
            np.testing.assert_allclose(got[within_key(radius)], p_within[:, k], rtol=1e-9, atol=1e-12)
            if cap is not None and radius < cap:
                assert np.isnan(got[within_key(radius)]).all()
        for j, p in enumerate(masses):
            np.testing.assert_allclose(got[radius_key(p)], r[:, j], rtol=1e-9)
            assert np.isnan(got[radius_key(p)][3])
            if cap is not None:
                assert (np.delete(got[radius_key(p)], 3) >= cap).all()
