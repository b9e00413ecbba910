"""The geo core's checks of p, q, K and R: plain floats back, or one line naming the value by its symbol
(never a command-line flag: the mains name their flags, tests/test_cli.py)."""
import math

import numpy as np
import pytest

from geoest.errors import InputError, RefusedValue
from geoest.geo.cell_outlines import FACE_EXTENT_KM
from geoest.geo.checks import check_masses, check_max_resolution, check_min_confidence, check_radii, plain_values


@pytest.mark.parametrize("check,value,named", [
    (check_masses, [0.0], "p=0.0: a region's probability mass must lie strictly between 0 and 1"),
    (check_masses, [1.0], "p=1.0: a region's probability mass must lie strictly between 0 and 1"),
    (check_masses, ["x"], "p='x': expected numbers strictly between 0 and 1"),
    (check_masses, [], "p: give at least one probability mass, e.g. 0.5,0.9"),
    (check_min_confidence, -0.1, "q=-0.1: expected a probability in [0, 1]"),
    (check_min_confidence, 1.5, "q=1.5: expected a probability in [0, 1]"),
    (check_min_confidence, "x", "q='x': expected a probability in [0, 1]"),
    (check_max_resolution, 0, "K=0: expected a distance in km above 0 and at most"),
    (check_max_resolution, -3, "K=-3: expected a distance in km above 0 and at most"),
    (check_max_resolution, None, "K=None: expected a distance in km above 0 and at most"),
    (check_max_resolution, FACE_EXTENT_KM * 1.01, "K="),
])
def test_bad_input_names_the_value(check, value, named):
    with pytest.raises(InputError) as raised:
        check(value)
    message = str(raised.value)
    assert message.startswith(named) and "--" not in message and "\n" not in message


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), "x"])
def test_bad_radius_named(bad):
    with pytest.raises(InputError, match=r"^R="):
        check_radii([bad])
    with pytest.raises(InputError, match=r"^R: give at least one radius"):
        check_radii([])


def test_good_values_come_back_as_floats():
    assert check_masses(["0.5", 0.9]) == (0.5, 0.9)
    assert check_min_confidence("0.25") == 0.25 and check_min_confidence(0) == 0.0
    assert check_max_resolution(200) == 200.0 and check_max_resolution(FACE_EXTENT_KM) == FACE_EXTENT_KM
    assert check_radii(25) == (25.0,) and check_radii(np.array([1.0, 2.5])) == (1.0, 2.5)
    assert all(type(v) is float for v in check_radii(np.float32(3.0)) + check_masses(np.array([0.5])))


def test_plain_values_name_numbers_as_python_does():
    assert plain_values(np.array([0.5, 2.0])) == [0.5, 2.0] and plain_values(3) == [3]
    assert repr(plain_values(np.float64(1.5))[0]) == "1.5"
    assert math.isnan(plain_values([float("nan")])[0])


def test_a_refused_value_names_a_flag_the_same_way():
    err = RefusedValue("p", "a region's probability mass must lie strictly between 0 and 1", 1.5)
    assert str(err) == "p=1.5: a region's probability mass must lie strictly between 0 and 1"
    assert err.named("--region_mass") == "--region_mass=1.5: a region's probability mass must lie strictly between 0 and 1"
    assert RefusedValue("p", "give at least one").named("--region_mass") == "--region_mass: give at least one"
