"""geoest.errors: a refused value is named by its symbol in the library and by its flag in a main."""
import pytest

from geoest.errors import InputError, RefusedValue


def test_a_refused_value_names_its_symbol_or_its_flag():
    error = RefusedValue("p", "a region's probability mass must lie strictly between 0 and 1", 1.5)
    assert isinstance(error, InputError)
    assert str(error) == "p=1.5: a region's probability mass must lie strictly between 0 and 1"
    assert error.named("--region_mass") == ("--region_mass=1.5: a region's probability mass must lie strictly "
                                            "between 0 and 1")
    without_value = RefusedValue("R", "no radius given")
    assert str(without_value) == "R: no radius given" and without_value.named("--radii_km") == "--radii_km: no radius given"
    assert RefusedValue("q", "expected a number", None).named("--min_confidence") == "--min_confidence=None: expected a number"
    with pytest.raises(InputError, match=r"^K='x': "):
        raise RefusedValue("K", "expected kilometres", "x")
