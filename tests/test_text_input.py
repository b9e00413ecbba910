"""geoest.text_input: a byte that is not UTF-8 is named by line and byte, and a repeated column by
both its places."""
import pytest

from geoest.errors import InputError
from geoest.text_input import decode_error, refuse_repeated_columns, utf8_error


def test_the_first_byte_that_is_not_utf8_is_named(tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes("IMG_ID,LAT,LON\nZürich.jpg,47.37,8.54\n".encode("utf-8"))
    bad.write_bytes("IMG_ID,LAT,LON\na.jpg,1,2\n".encode() + "Zürich.jpg,47.37,8.54\n".encode("latin-1"))
    assert utf8_error(good) is None
    assert utf8_error(bad) == "line 3, byte 2: 0xfc is not utf-8"
    error = decode_error(bad)
    assert isinstance(error, InputError)
    assert str(error) == f"{bad}: line 3, byte 2: 0xfc is not utf-8; save the file as utf-8"


def test_a_repeated_column_is_refused_naming_both_places():
    refuse_repeated_columns("meta.csv", ["IMG_ID", "LAT", "LON"])
    with pytest.raises(InputError, match=r"meta.csv: line 1: the column 'LAT' appears twice \(columns 2 and 4\)"):
        refuse_repeated_columns("meta.csv", ["IMG_ID", "LAT", "LON", "LAT"])
