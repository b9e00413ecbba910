"""The text files users give (meta CSVs, URL lists, partitionings, results): UTF-8, a byte that is
not named by line (`utf8_error`, `decode_error`), and a header without repeated columns."""
from geoest.errors import InputError
from geoest.files import ENCODING


def utf8_error(path) -> str | None:
    """Where `path` stops being UTF-8: "line L, byte B: 0xXX is not UTF-8", or None.

    Reads line by line: meant for the error path, after a fast reader has failed.
    """
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode(ENCODING)
            except UnicodeDecodeError as err:
                return f"line {number}, byte {err.start + 1}: 0x{line[err.start]:02x} is not {ENCODING}"
    return None


def refuse_repeated_columns(path, header) -> None:
    """InputError naming a column that a CSV's header (list of names) has twice: which of the two a
    reader would take is arbitrary."""
    for k, name in enumerate(header):
        if name in header[:k]:
            raise InputError(f"{path}: line 1: the column {name!r} appears twice (columns "
                             f"{header.index(name) + 1} and {k + 1}); keep one")


def decode_error(path) -> InputError:
    """The InputError for a text file that is not UTF-8, naming the line of the first bad byte."""
    where = utf8_error(path) or "a byte that is not " + ENCODING
    return InputError(f"{path}: {where}; save the file as {ENCODING}")
