"""Reading photo coordinates from meta CSV files (MP-16 and Im2GPS meta formats)."""
import os
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.files import ENCODING, decode_error
from geoest.geo.partitioning import validate_coordinates


def read_coordinates(path, lat_column: str = "LAT", lon_column: str = "LON",
                     id_column: str = "IMG_ID"):
    """Latitudes and longitudes of a meta CSV, read column-wise with pyarrow.

    Only the id and the two coordinate columns are loaded, so the 4.7 M rows of MP-16 take about
    a second and little memory. The file is UTF-8; only an empty field counts as missing (a literal
    "nan" is a NaN and named as such).

    Returns:
      (lat_deg, lon_deg): np.float64 [N] each.
    Raises:
      InputError naming the file for a missing file, a missing column (listing the columns
      found), a byte that is not UTF-8, an IMG_ID that appears twice, a non-numeric value, or
      a coordinate that is empty, NaN or out of range (naming its line).
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise InputError(f"{path}: meta CSV not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file; expected a header with {id_column},"
                         f"{lat_column},{lon_column}")
    with open(path, "rb") as f:
        first = f.readline()
    try:
        header = first.decode(ENCODING).strip().split(",")
    except UnicodeDecodeError:
        raise decode_error(path) from None
    missing = [c for c in (id_column, lat_column, lon_column) if c not in header]
    if missing:
        raise InputError(f"{path}: no column {', '.join(map(repr, missing))}; the header has "
                         f"{', '.join(header)}")
    try:
        # Only an empty field is missing: a literal "nan" reads as NaN and is named as such below.
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(
                include_columns=[id_column, lat_column, lon_column], null_values=[""],
                column_types={id_column: pa.binary(), lat_column: pa.float64(), lon_column: pa.float64()}))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InputError(f"{path}: {str(err).splitlines()[0]}") from None
    _refuse_duplicates(table.column(id_column).combine_chunks(), path, id_column)
    columns = []
    for name in (lat_column, lon_column):
        col = table.column(name)
        if col.null_count:
            line = int(np.argmax(np.asarray(col.is_null()))) + 2
            raise InputError(f"{path}: line {line}: empty {name}")
        columns.append(col.to_numpy())
    return validate_coordinates(*columns, source=str(path), first_line=2)


def _refuse_duplicates(ids, path, id_column: str) -> None:
    """InputError naming the second line of an IMG_ID that appears twice (a photo counted twice).

    Sorting the ids (pyarrow) costs about 1.4 CPU-seconds for the 4.7 M of MP-16; hashing them costs more.
    """
    import pyarrow.compute as pc

    order = pc.sort_indices(ids)
    ranked = ids.take(order)
    same = pc.equal(ranked.slice(1), ranked.slice(0, len(ranked) - 1))
    if len(ids) < 2 or not pc.any(same).as_py():
        return
    twins = np.flatnonzero(same.to_numpy(zero_copy_only=False))
    rows = order.to_numpy()
    row = int(np.maximum(rows[twins], rows[twins + 1]).min())
    image_id = ids[row].as_py().decode(ENCODING, "replace")
    raise InputError(f"{path}: line {row + 2}: {id_column} {image_id!r} appears more than once "
                     "(each photo must be counted once)")
