"""The Im2GPS meta format with scene labels, and scene statistics over it (§3.2, §4).

The paper's authors published per-image scene labels as
``IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban``
(S3_Label 0 indoor, 1 natural, 2 urban). ``tools/label_scenes.py --all_probs`` appends the
365 category probabilities as ``prob365_0`` ... ``prob365_364``.
"""
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.scene.places365 import CONCEPTS

ID_COLUMN, AUTHOR_COLUMN, LAT_COLUMN, LON_COLUMN = "IMG_ID", "AUTHOR", "LAT", "LON"
LABEL_COLUMNS = ("S3_Label", "S16_Label", "S365_Label")
PROB_COLUMNS = tuple(f"Prob_{concept}" for concept in CONCEPTS)
META_COLUMNS = (ID_COLUMN, AUTHOR_COLUMN, LAT_COLUMN, LON_COLUMN) + LABEL_COLUMNS + PROB_COLUMNS
TAU_S = 0.3  # §4: an ISN trains on the images whose concept probability exceeds tau_S


def prob365_columns(num_categories: int = 365) -> tuple:
    """Names of the per-category probability columns: ``prob365_0`` ... ``prob365_364``."""
    return tuple(f"prob365_{i}" for i in range(num_categories))


def read_s3_labels(meta_csv) -> dict:
    """IMG_ID -> S3 label (0 indoor, 1 natural, 2 urban) from an Im2GPS-format meta CSV.

    Raises:
      InputError naming the file (and line): a missing file or column, a label not 0, 1 or 2.
    """
    import pandas as pd

    meta_csv = pathlib.Path(meta_csv)
    if not meta_csv.is_file():
        raise InputError(f"{meta_csv}: meta CSV not found")
    frame = pd.read_csv(meta_csv, dtype={ID_COLUMN: str})
    for column in (ID_COLUMN, "S3_Label"):
        if column not in frame.columns:
            raise InputError(f"{meta_csv}: no column {column!r}; the header has "
                             f"{', '.join(frame.columns)}")
    labels = pd.to_numeric(frame["S3_Label"], errors="coerce")
    bad = ~labels.isin(range(len(CONCEPTS))).to_numpy()
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise InputError(f"{meta_csv}: line {line}: S3_Label {frame['S3_Label'].iloc[line - 2]!r} "
                         "is not 0 (indoor), 1 (natural) or 2 (urban)")
    return dict(zip(frame[ID_COLUMN], labels.astype(int)))


def scene_statistics(meta_csv, tau_s: float = TAU_S) -> dict:
    """Images per concept and the training-set size of each ISN at ``tau_s`` (§3.3, §4).

    An image counts for the ISN of a concept when its probability of that concept is greater
    than ``tau_s``, so with tau_S = 0.3 an image may train up to three ISNs (§4 reports
    1.80 M indoor, 1.42 M natural and 2.34 M urban images on MP-16).

    Args:
      meta_csv: a CSV in the Im2GPS meta format (needs S3_Label and the Prob_* columns).
      tau_s: the concept-probability threshold.
    Returns:
      {"count": N, "tau_s": tau_s, "images_per_concept": {"indoor": n, ...} (by S3_Label),
       "isn_images": {"indoor": n, ...} (Prob_concept > tau_s)}.
    Raises:
      InputError: a column is missing or a value is not a number / label.
    """
    import pandas as pd

    meta_csv = pathlib.Path(meta_csv)
    needed = ("S3_Label",) + PROB_COLUMNS
    try:
        frame = pd.read_csv(meta_csv, usecols=lambda c: c in needed)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{meta_csv}: cannot read it as a CSV ({e})") from e
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"{meta_csv}: missing columns {missing}; expected the Im2GPS meta "
                         f"format {','.join(META_COLUMNS)}")
    values = frame.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1) | ~values["S3_Label"].isin(range(len(CONCEPTS)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{meta_csv}, data row {row + 1}: expected S3_Label in 0..2 and "
                         f"numeric probabilities, got {frame.iloc[row].to_dict()}")
    labels = values["S3_Label"].to_numpy(dtype=np.int64)
    per_concept = np.bincount(labels, minlength=len(CONCEPTS))
    probs = values[list(PROB_COLUMNS)].to_numpy(dtype=np.float64)
    isn = (probs > tau_s).sum(axis=0)
    return {"count": int(len(frame)), "tau_s": float(tau_s),
            "images_per_concept": {c: int(n) for c, n in zip(CONCEPTS, per_concept)},
            "isn_images": {c: int(n) for c, n in zip(CONCEPTS, isn)}}
