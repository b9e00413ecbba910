"""The methods evaluate and predict run, as loaded from model dirs."""
import pytest

from geoest.errors import InputError
from geoest.inference.methods import load_methods


@pytest.mark.parametrize("concepts", [("indoor", "natural"), ("indoor", "natural", "urban", "sky"),
                                      ("isn_indoor", "natural", "urban")])
def test_isn_dirs_must_name_exactly_the_three_concepts(concepts, tmp_path):
    # Refused before any model is read (none of these dirs exists).
    with pytest.raises(InputError, match=r"expected exactly \[.indoor., .natural., .urban.\]"):
        load_methods(isn_dirs={c: tmp_path / c for c in concepts})
