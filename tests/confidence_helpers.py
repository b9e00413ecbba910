"""Shared inputs of the confidence tests (regions, back-off, the resolution cap, `Confidence`): three
nested partitionings of clustered points, their hierarchy, and random sparse distributions over the
fine cells."""
import numpy as np
import pytest

from geoest.geo import Hierarchy
from inference_helpers import partitionings


@pytest.fixture(scope="module")
def parts():
    return partitionings(1500)


@pytest.fixture(scope="module")
def hierarchy(parts):
    return Hierarchy(parts)


def random_distributions(rng, batch, n, sparsity=0.7):
    """float [batch, n] rows summing to 1, about `sparsity` of the cells at zero (never a whole row)."""
    probs = rng.gamma(0.3, size=(batch, n)) * (rng.uniform(size=(batch, n)) > sparsity)
    probs[np.arange(batch), rng.integers(n, size=batch)] += 1e-3   # never all zero
    return probs / probs.sum(axis=1, keepdims=True)
