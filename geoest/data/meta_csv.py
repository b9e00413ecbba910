"""Meta CSVs: which photo was taken where, and (optionally) what scene it shows.

Accepted columns (design.md, names in `geoest.scene.columns`): `IMG_ID,LAT,LON` plus optional ones,
  * `AUTHOR`, kept by the scene labeller;
  * the scene columns of the Im2GPS meta format published with the paper
    `IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban`
    (the three `Prob_*` columns give the S3 probabilities, the `S*_Label` columns the hard
    scene label of each level, §3.2), and/or
  * 365 Places365 probabilities in columns `prob365_0` ... `prob365_364`
    (what `tools/label_scenes.py --all_probs` writes).

`read_meta_csv` is the one reader of these files. It reads column-wise with pyarrow and loads only the
columns asked for, so the 4.7 M coordinates of MP-16 (`scene=False, author=False`) take about a second.
"""
import csv
import dataclasses
import functools
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from geoest.errors import InputError
from geoest.files import ENCODING
from geoest.photo_paths import path_inside
from geoest.scene.columns import (AUTHOR_COLUMN, ID_COLUMN, LABEL_COLUMNS, LAT_COLUMN, LON_COLUMN, PROB_COLUMNS,
                                  PROBS365_COLUMNS)
from geoest.scene.places365 import LEVEL_CLASSES, LEVELS
from geoest.text_input import decode_error, refuse_repeated_columns


@dataclasses.dataclass(eq=False)
class Meta:
    """The rows of a meta CSV, as arrays.

    Attributes:
      path: the file read.
      id_array: pyarrow.StringArray [n] of IMG_IDs, relative image paths (may contain sub-folders);
        `ids` gives them as a list of str.
      lat_deg, lon_deg: np.float64 [n].
      author_array: pyarrow.StringArray [n] of the AUTHOR column, or None when not read; `authors`
        gives them as a list of str.
      probs365: np.float32 [n, 365] or None when the file has no `prob365_*` columns.
      probs3: np.float32 [n, 3] or None when the file has no `Prob_*` columns.
      scene_labels: np.int64 [n, 3], the S3, S16 and S365 labels (-1 for a level whose
        `S*_Label` column the file lacks), or None when it has none of them.
    """
    path: pathlib.Path
    id_array: object
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    author_array: object = None
    probs365: np.ndarray | None = None
    probs3: np.ndarray | None = None
    scene_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lat_deg)

    @functools.cached_property
    def ids(self) -> list:
        """list[str] [n], the IMG_IDs (made on first use: 4.7 M Python strings take a second)."""
        return self.id_array.to_pylist()

    @functools.cached_property
    def authors(self) -> list | None:
        """list[str] [n], the AUTHOR column, or None when the file has none (or it was not read)."""
        return None if self.author_array is None else self.author_array.to_pylist()

    def image_paths(self, images_dir, allow_absolute_paths: bool = False):
        """Where each row's photo is: `images_dir / IMG_ID`, never outside images_dir.

        Returns:
          (paths, outside): {row: path str} of the rows whose IMG_ID stays inside images_dir
          (or is absolute, with `allow_absolute_paths`), and {row: reason} of the others, whose
          files must not be opened (`geoest.photo_paths.path_inside`).
        """
        paths, outside = {}, {}
        for row, image_id in enumerate(self.ids):
            path, reason = path_inside(images_dir, image_id, allow_absolute_paths)
            if path is None:
                outside[row] = reason
            else:
                paths[row] = str(path)
        return paths, outside


def read_meta_csv(path, id_column: str = ID_COLUMN, lat_column: str = LAT_COLUMN,
                  lon_column: str = LON_COLUMN, *, author: bool = True, scene: bool = True,
                  probs365: bool = True, required=()) -> Meta:
    """Reads and checks a meta CSV (UTF-8; only an empty field counts as missing).

    Args:
      path: the CSV file.
      id_column, lat_column, lon_column: names of the IMG_ID and coordinate (degrees) columns.
      author: read the AUTHOR column if the file has it.
      scene: read the scene columns (S*_Label, Prob_*, and with `probs365` prob365_*) if the file
        has them; False leaves them unread, unchecked, and their Meta fields None. With neither
        `author` nor `scene`, only the three columns above are read (what a partitioning needs).
      probs365: with `scene`, also read the 365 Places365 probabilities (6.9 GB for MP-16).
      required: further columns the file must have (e.g. `LABEL_COLUMNS[0]` for S3 labels).
    Returns:
      A `Meta`.
    Raises:
      InputError naming the file, and the row and value where there is one: a missing file or
        column (listing the header), a column named twice, a byte that is not UTF-8, an empty or
        duplicate IMG_ID, a coordinate that is empty, not a number, NaN or out of range, a
        probability outside [0, 1], only some of the S3 or of the 365 probability columns, or a
        scene label that is not an integer class of its level.
    """
    path = pathlib.Path(path)
    coordinates = (id_column, lat_column, lon_column)
    header = _header(path, coordinates)
    missing = [c for c in dict.fromkeys(coordinates + tuple(required)) if c not in header]
    if missing:
        shown = ", ".join(header[:12]) + (f", ... ({len(header)} columns)" if len(header) > 12 else "")
        raise InputError(f"{path}: no column {', '.join(map(repr, missing))}; the header has {shown}")
    types = {id_column: pa.string(), lat_column: pa.float64(), lon_column: pa.float64()}
    groups = [((AUTHOR_COLUMN,), pa.string())] if author else []     # optional columns to read
    if scene:
        groups += [(LABEL_COLUMNS, pa.float64()), (PROB_COLUMNS, pa.float64())]
        if probs365:   # 365 probability columns of MP-16 (4.7 M rows) only fit in memory as float32.
            groups.append((PROBS365_COLUMNS, pa.float32()))
    for columns, dtype in groups:
        present = [c for c in columns if c in header]
        absent = [c for c in columns if c not in header]
        if columns in (PROB_COLUMNS, PROBS365_COLUMNS) and present and absent:
            raise InputError(f"{path}: has only some of the {len(columns)} probability columns "
                             f"{columns[0]}..{columns[-1]} (missing {', '.join(absent[:5])}"
                             f"{'...' if len(absent) > 5 else ''})")
        types.update(dict.fromkeys(present, dtype))
    table = _read_table(path, types)

    ids = pc.utf8_trim_whitespace(table.column(id_column).combine_chunks())
    empty = pc.utf8_length(ids).to_numpy() == 0
    if empty.any():
        raise _bad_row(path, int(np.argmax(empty)), "", f"empty {id_column}")
    _refuse_duplicates(ids, path, id_column)

    def numbers(column, low, high, what):
        return _numbers(table.column(column), column, low, high, what, path, ids)

    meta = Meta(path=path, id_array=ids,
                lat_deg=numbers(lat_column, -90, 90, "a latitude in [-90, 90] degrees"),
                lon_deg=numbers(lon_column, -180, 180, "a longitude in [-180, 180] degrees"))
    if AUTHOR_COLUMN in types:
        meta.author_array = table.column(AUTHOR_COLUMN).combine_chunks()
    for field, columns in (("probs3", PROB_COLUMNS), ("probs365", PROBS365_COLUMNS)):
        if columns[0] in types:
            # The published meta files hold float sums a few 1e-8 above 1 (im2gps3k_places365.csv:
            # Prob_urban 1.0000000275342347): within 1e-6 of [0, 1] is clipped.
            probs = np.empty((len(meta), len(columns)), np.float32)
            for k, column in enumerate(columns):
                probs[:, k] = numbers(column, -1e-6, 1 + 1e-6, "a probability in [0, 1]")
            setattr(meta, field, np.clip(probs, 0.0, 1.0))
    if any(c in types for c in LABEL_COLUMNS):
        meta.scene_labels = np.full((len(meta), len(LEVELS)), -1, np.int64)
        for k, (level, column) in enumerate(zip(LEVELS, LABEL_COLUMNS)):
            if column in types:
                n = LEVEL_CLASSES[level]
                what = f"an {level} label, an integer in 0..{n - 1}"
                labels = numbers(column, 0, n - 1, what)
                fraction = np.flatnonzero(labels != np.round(labels))
                if len(fraction):
                    row = int(fraction[0])
                    raise _bad_row(path, row, ids[row].as_py(), f"{column} is {labels[row].item()!r}; expected {what}")
                meta.scene_labels[:, k] = labels
    return meta


def _header(path: pathlib.Path, coordinates) -> list:
    """The column names of a meta CSV's first line."""
    if not path.is_file():
        raise InputError(f"meta CSV {path} does not exist")
    with open(path, "rb") as f:
        first = f.readline()
    if not first.strip():
        raise InputError(f"{path}: empty file; expected a header with {','.join(coordinates)}")
    try:
        text = first.decode(ENCODING).lstrip("\ufeff")
    except UnicodeDecodeError:
        raise decode_error(path) from None
    header = [name.strip() for name in next(csv.reader([text]))]
    refuse_repeated_columns(path, header)
    return header


def _read_table(path: pathlib.Path, types: dict):
    """The columns `types` names, read with those pyarrow types; a value that does not convert is named."""
    def read(column_types):
        try:
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                include_columns=list(column_types), column_types=column_types, null_values=[""])), None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            if "UTF8" in str(err):
                raise decode_error(path) from None
            return None, str(err).splitlines()[0]

    table, problem = read(types)
    if table is not None:
        return table
    # A value that does not convert: read the columns as text to name its row (the error path only).
    text, _ = read({c: pa.string() for c in types})
    if text is not None:
        ids = text.column(next(iter(types)))
        for column, dtype in types.items():
            if pa.types.is_floating(dtype):
                for row, value in enumerate(text.column(column).to_pylist()):
                    try:
                        float(value)
                    except (TypeError, ValueError):
                        raise _bad_row(path, row, ids[row].as_py(),
                                       f"{column} is {value!r}; expected a number") from None
    raise InputError(f"{path}: not a readable meta CSV ({problem})")


def _bad_row(path, index: int, image_id, what: str) -> InputError:
    # Line numbers count the header as line 1.
    return InputError(f"{path}: row {index + 1} (line {index + 2}, {ID_COLUMN} {image_id!r}): {what}")


def _numbers(values, column: str, low: float, high: float, what: str, path, ids) -> np.ndarray:
    """A pyarrow float column as numpy [n], every value in [low, high]; else the first other is named."""
    values = values.combine_chunks()
    if values.null_count:
        row = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
        raise _bad_row(path, row, ids[row].as_py(), f"{column} is empty; expected {what}")
    array = values.to_numpy()
    bad = ~((array >= low) & (array <= high))  # also true for NaN
    if bad.any():
        row = int(np.argmax(bad))
        raise _bad_row(path, row, ids[row].as_py(), f"{column} is {array[row].item()!r}; expected {what}")
    return array


def _refuse_duplicates(ids, path, id_column: str) -> None:
    """InputError naming the second line of an IMG_ID that appears twice (a photo counted twice).

    Sorting the ids (pyarrow) costs about 1.4 CPU-seconds for the 4.7 M of MP-16; hashing them costs more.
    """
    if len(ids) < 2:
        return
    order = pc.sort_indices(ids)
    ranked = ids.take(order)
    same = pc.equal(ranked.slice(1), ranked.slice(0, len(ranked) - 1))
    if not pc.any(same).as_py():
        return
    twins = np.flatnonzero(same.to_numpy(zero_copy_only=False))
    rows = order.to_numpy()
    row = int(np.maximum(rows[twins], rows[twins + 1]).min())
    raise _bad_row(path, row, ids[row].as_py(),
                   f"{id_column} appears more than once (each photo must be counted once)")
