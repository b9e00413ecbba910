"""Meta CSVs: which photo was taken where, and (optionally) what scene it shows.

Accepted columns (design.md): `IMG_ID,LAT,LON` plus optional scene columns, either
  * the Im2GPS meta format published with the paper
    `IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban`
    (the three `Prob_*` columns give the S3 probabilities, the `S*_Label` columns the hard
    scene label of each level, §3.2), and/or
  * 365 Places365 probabilities in columns `prob365_0` ... `prob365_364`
    (what `tools/label_scenes.py --all_probs` writes).
"""
import dataclasses
import pathlib

import numpy as np
import pandas as pd

from geoest.errors import InputError
from geoest.scene.meta import LABEL_COLUMNS                     # S3_Label, S16_Label, S365_Label
from geoest.scene.meta import PROB_COLUMNS as PROBS3_COLUMNS   # S3 order of §3.2
from geoest.scene.meta import prob365_columns
from geoest.scene.places365 import LEVEL_CLASSES, LEVELS

ID_COLUMN = "IMG_ID"
LAT_COLUMN = "LAT"
LON_COLUMN = "LON"
PROBS365_COLUMNS = prob365_columns()


@dataclasses.dataclass
class Meta:
    """The rows of a meta CSV, as arrays.

    Attributes:
      path: the file read.
      ids: list[str] of IMG_IDs, relative image paths (may contain sub-folders).
      lat_deg, lon_deg: np.float64 [n].
      probs365: np.float32 [n, 365] or None when the file has no `prob365_*` columns.
      probs3: np.float32 [n, 3] or None when the file has no `Prob_*` columns.
      scene_labels: np.int64 [n, 3], the S3, S16 and S365 labels (-1 for a level whose
        `S*_Label` column the file lacks), or None when it has none of them.
    """
    path: pathlib.Path
    ids: list
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    probs365: np.ndarray | None = None
    probs3: np.ndarray | None = None
    scene_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def _bad_row(path, index: int, image_id, what: str) -> InputError:
    # Line numbers count the header as line 1.
    return InputError(f"{path}: row {index + 1} (line {index + 2}, IMG_ID {image_id!r}): {what}")


def _numbers(frame, columns, path, ids, low, high, what) -> np.ndarray:
    block = frame[list(columns)]
    if not all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
        block = block.apply(pd.to_numeric, errors="coerce")
    values = block.to_numpy(np.float32 if len(columns) > 3 else np.float64)
    bad = ~np.isfinite(values) | (values < low) | (values > high)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = frame[columns[col]].iloc[row]
        raw = raw if isinstance(raw, str) else raw.item()
        raise _bad_row(path, int(row), ids[row],
                       f"{columns[col]} is {raw!r}; expected {what}")
    return values


def _probabilities(frame, columns, path, ids) -> np.ndarray:
    """float32 [n, len(columns)] in [0, 1]. The published meta files hold float sums a few 1e-8 above 1
    (im2gps3k_places365.csv: Prob_urban 1.0000000275342347): within 1e-6 of [0, 1] is clipped."""
    values = _numbers(frame, columns, path, ids, -1e-6, 1 + 1e-6, "a probability in [0, 1]")
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def read_meta_csv(path, id_column: str = ID_COLUMN, lat_column: str = LAT_COLUMN,
                  lon_column: str = LON_COLUMN) -> Meta:
    """Reads and checks a meta CSV.

    Raises:
      InputError: naming the file and row, for a missing file or column, an empty or
        duplicate IMG_ID, a coordinate that is not a number in degrees, or a probability
        outside [0, 1].
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"meta CSV {path} does not exist")
    try:
        header = pd.read_csv(path, nrows=0).columns
        # 365 probability columns of MP-16 (4.7 M rows) only fit in memory as float32.
        dtypes = {c: np.float32 for c in PROBS365_COLUMNS if c in header}
        try:
            frame = pd.read_csv(path, dtype={id_column: str, **dtypes}, keep_default_na=False)
        except ValueError:  # a probability that is not a number: read as text to name its row
            frame = pd.read_csv(path, dtype={id_column: str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{path}: not a readable CSV ({e})") from e
    missing = [c for c in (id_column, lat_column, lon_column) if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected a header with "
                         f"{id_column},{lat_column},{lon_column} (found {list(frame.columns)[:12]})")
    ids = frame[id_column].astype(str).str.strip().tolist()
    empty = [i for i, image_id in enumerate(ids) if not image_id]
    if empty:
        raise _bad_row(path, empty[0], "", f"empty {id_column}")
    duplicated = frame[id_column].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise _bad_row(path, row, ids[row], f"{id_column} appears more than once")

    lat = _numbers(frame, [lat_column], path, ids, -90, 90, "a latitude in [-90, 90] degrees")
    lon = _numbers(frame, [lon_column], path, ids, -180, 180,
                   "a longitude in [-180, 180] degrees")
    meta = Meta(path=path, ids=ids, lat_deg=lat[:, 0], lon_deg=lon[:, 0])

    present3 = [c in frame.columns for c in PROBS3_COLUMNS]
    if any(present3) and not all(present3):
        raise InputError(f"{path}: has only some of the S3 columns {PROBS3_COLUMNS}")
    if all(present3):
        meta.probs3 = _probabilities(frame, PROBS3_COLUMNS, path, ids)
    present365 = [c in frame.columns for c in PROBS365_COLUMNS]
    if any(present365) and not all(present365):
        absent = [c for c, p in zip(PROBS365_COLUMNS, present365) if not p]
        raise InputError(f"{path}: has only some of the 365 columns prob365_0..prob365_364 "
                         f"(missing {absent[:5]}...)")
    if all(present365):
        meta.probs365 = _probabilities(frame, PROBS365_COLUMNS, path, ids)
    if any(c in frame.columns for c in LABEL_COLUMNS):
        meta.scene_labels = np.full((len(ids), len(LEVELS)), -1, np.int64)
        for k, (level, column) in enumerate(zip(LEVELS, LABEL_COLUMNS)):
            if column in frame.columns:
                n = LEVEL_CLASSES[level]
                labels = _numbers(frame, [column], path, ids, 0, n - 1,
                                  f"an {level} label, an integer in 0..{n - 1}")[:, 0]
                if (labels != np.round(labels)).any():
                    row = int(np.flatnonzero(labels != np.round(labels))[0])
                    raise _bad_row(path, row, ids[row], f"{column} is {labels[row]!r}; expected an {level} "
                                   f"label, an integer in 0..{n - 1}")
                meta.scene_labels[:, k] = labels.astype(np.int64)
    return meta
