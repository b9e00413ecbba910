"""Confidence regions: the smallest set of cells holding a mass p, on random and hand-made distributions."""
import numpy as np

from confidence_helpers import random_distributions
from geoest.geo.regions import DEFAULT_MASSES, in_region, mass_key, region_sizes


def test_region_holds_the_stated_mass_and_is_smallest():
    rng = np.random.default_rng(0)
    probs = random_distributions(rng, 200, 40)
    for p in (0.1, 0.5, 0.9, 0.99):
        order, sizes = region_sizes(probs, p)
        members = in_region(order, sizes)
        mass = np.where(members, probs, 0).sum(axis=1)
        assert (mass >= p - 1e-9).all()
        # one cell fewer (the least probable of the set) no longer holds p: the set is the smallest
        smaller = mass - np.take_along_axis(probs, order[np.arange(200), sizes - 1][:, None], axis=1)[:, 0]
        assert (smaller < p).all()
        # the set holds the most probable cells
        outside = np.where(members, -1, probs).max(axis=1)
        inside = np.where(members, probs, 2).min(axis=1)
        assert (outside <= inside).all()


def test_mass_near_one_gives_the_whole_support():
    probs = np.array([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
    _, sizes = region_sizes(probs, 1 - 1e-9)
    assert sizes.tolist() == [3, 1]
    order, sizes = region_sizes(probs, 0.5)
    assert sizes.tolist() == [1, 1] and order[0, 0] == 0


def test_mass_keys_name_the_percentage():
    assert [mass_key(p) for p in DEFAULT_MASSES] == ["50", "90"]
    assert mass_key(0.975) == "97_5"
