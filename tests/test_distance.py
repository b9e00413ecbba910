"""geoest.geo.distance: the great-circle distance (numpy and TF) and accuracy at Table 6's radii."""
import numpy as np

from geoest.geo import accuracy_at, great_circle_km
from geoest.geo.distance import great_circle_km_tf


def test_known_distances():
    # A quarter of the equator, pole to pole, one degree of latitude, across the antimeridian.
    got = great_circle_km([0, 90, 0, 0], [0, 0, 0, 179.5], [0, -90, 1, 0], [90, 0, 0, -179.5])
    circumference = 2 * np.pi * 6371.0
    np.testing.assert_allclose(got, [circumference / 4, circumference / 2, circumference / 360,
                                     circumference / 360], rtol=1e-12)
    assert great_circle_km(48.1, 11.6, 48.1, 11.6) == 0.0
    np.testing.assert_allclose(great_circle_km_tf([0.0, 90.0], [0.0, 0.0], [0.0, -90.0],
                                                  [90.0, 0.0]).numpy(), got[:2], rtol=1e-12)


def test_accuracy_at_thresholds_inclusive():
    acc = accuracy_at([0.5, 1.0, 24.0, 300.0, 3000.0])
    assert acc == {1: 0.4, 25: 0.6, 200: 0.6, 750: 0.8, 2500: 0.8}
