"""Shared inputs of the distance-event tests (W_R, the distance temperature, the how-sure figures):
training photos and the distance weights built from them, distributions over the fine cells, true
locations drawn from the model's own distribution, and the ECE noise floor of a calibrated score.

The sampled tests draw true locations from the model's own distribution: the true cell from f*, then a
training photo of that cell. A score built from the same weights is then calibrated by construction,
so its ECE must sit at the noise floor of a perfectly calibrated score (Bernoulli outcomes drawn
from the score itself), and R_p must hold p of the photos.
"""
import numpy as np
import pytest

from geoest.geo.calibration_metrics import expected_calibration_error
from geoest.geo.distance_weights import WithinWeights
from inference_helpers import clustered_points, partitionings


@pytest.fixture(scope="module")
def training():
    lat, lon = clustered_points(3000, 0)
    fine = partitionings(3000)[-1]
    return fine, lat, lon, fine.assign(lat, lon)


@pytest.fixture(scope="module")
def weights(training):
    fine, lat, lon, _ = training
    return WithinWeights.build(fine, lat, lon)


def distributions(rng, batch, n):
    """float [batch, n] softmax rows of random logits, some sharp and some flat."""
    logits = rng.normal(size=(batch, n)) * rng.uniform(0.5, 4.0, size=(batch, 1))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def distributions_over_photos(rng, batch, classes, n):
    """`distributions` with zero on every cell no training photo falls in (`classes` [photos], -1 in
    none), renormalised: the truth `sample_truth` draws always has a photo to draw."""
    probs = distributions(rng, batch, n)
    probs[:, np.bincount(classes[classes >= 0], minlength=n) == 0] = 0.0
    return probs / probs.sum(axis=1, keepdims=True)


def sample_truth(rng, probs, classes, lat, lon):
    """True cell from each row of probs, then one training photo of that cell: ([B] lat, [B] lon)."""
    cum = np.cumsum(probs, axis=1)
    cell = (cum < rng.uniform(size=(len(probs), 1)) * cum[:, -1:]).sum(axis=1)
    members = [np.flatnonzero(classes == c) for c in range(probs.shape[1])]
    pick = np.array([rng.choice(members[c]) for c in cell.tolist()])
    return lat[pick], lon[pick]


def ece_noise_floor(rng, score, draws=20):
    """The largest ECE of `draws` outcome sets drawn from the score itself (a calibrated score's noise)."""
    return max(expected_calibration_error(score, rng.uniform(size=score.shape) < score) for _ in range(draws))
