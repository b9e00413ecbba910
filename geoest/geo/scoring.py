"""The results-file format published with the paper, and its scores (Table 6, Table 4).

A results file (one per model and test set, as the paper's authors published them) holds one row
per image, `img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance` (degrees, km),
then an empty line, the summary header `SUMMARY_COLUMNS` and one summary row: the fractions of
images within 1 / 25 / 200 / 750 / 2500 km and the mean distance in km. The published files mix
CRLF and LF line endings; coordinates carry 6 decimals, distances 2, the summary's fractions 6 and
its mean 2. `write_results_csv` writes that layout, `read_results_csv` reads it (and the same rows
without a summary block) and checks the summary against the rows. Scores per scene concept (Table 4)
are `geoest.inference.scene_scores.score_file`.
"""
import csv
import dataclasses
import os
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.geo.distance import THRESHOLDS_KM, accuracy_at, great_circle_km
from geoest.text_input import refuse_repeated_columns

RESULTS_COLUMNS = ("img_id", "gt_lat", "predicted_lat", "gt_long", "predicted_long",
                   "great_circle_distance")
SUMMARY_COLUMNS = ("street acc (1km)", "city acc (25km)", "region acc (200km)",
                   "country acc (750km)", "continent acc (2500km)", "mean deviation (km)")
COORDINATE_DECIMALS = 6    # the published rounding
DISTANCE_DECIMALS = 2
FRACTION_DECIMALS = 6


@dataclasses.dataclass
class Results:
    """A results file's rows, as arrays, and its summary row.

    ids: list[str] [N]; gt_lat_deg, gt_lon_deg, pred_lat_deg, pred_lon_deg: float64 [N];
    dist_km: float64 [N], recomputed from the coordinates (the same haversine as evaluate);
    summary: the summary row {SUMMARY_COLUMNS[i]: float} or None when the file has none.
    """
    ids: list
    gt_lat_deg: np.ndarray
    gt_lon_deg: np.ndarray
    pred_lat_deg: np.ndarray
    pred_lon_deg: np.ndarray
    dist_km: np.ndarray
    summary: dict | None = None


def summarize(dist_km) -> dict:
    """{"count": N, "accuracy": {"1": f, ..., "2500": f}, "median_km": f, "mean_km": f}."""
    dist_km = np.asarray(dist_km, dtype=np.float64).ravel()
    if dist_km.size == 0:
        return {"count": 0, "accuracy": {str(t): None for t in THRESHOLDS_KM},
                "median_km": None, "mean_km": None}
    return {"count": int(dist_km.size),
            "accuracy": {str(t): v for t, v in accuracy_at(dist_km).items()},
            "median_km": float(np.median(dist_km)), "mean_km": float(np.mean(dist_km))}


def summary_row(dist_km) -> list:
    """The published summary row of distances [N] km: fractions within Table 6's radii, mean km."""
    accuracy = accuracy_at(dist_km)
    return ([round(accuracy[t], FRACTION_DECIMALS) for t in THRESHOLDS_KM]
            + [round(float(np.mean(dist_km)), DISTANCE_DECIMALS)])


def _published(degrees) -> np.ndarray:
    return np.round(np.asarray(degrees, np.float64).ravel(), COORDINATE_DECIMALS)


def errors_km(gt_lat, gt_lon, pred_lat, pred_lon) -> np.ndarray:
    """Great-circle errors as a results file holds them (§4): the coordinates rounded to the
    published 6 decimals, then the haversine. Evaluation and validation during training both
    score with it (`summarize`).

    Args:
      gt_lat, gt_lon, pred_lat, pred_lon: [N] degrees.
    Returns:
      float64 [N] km.
    """
    gt_lat, gt_lon, pred_lat, pred_lon = map(_published, (gt_lat, gt_lon, pred_lat, pred_lon))
    return great_circle_km(gt_lat, gt_lon, pred_lat, pred_lon)


def write_results_csv(path, img_ids, gt_lat, gt_lon, pred_lat, pred_lon) -> np.ndarray:
    """Writes the published layout: one row per image, an empty line, the summary block.

    Coordinates are rounded to 6 decimals first and the distances computed from the rounded
    values, so `read_results_csv` on the file gives back exactly the returned distances.

    Args:
      img_ids: [N] str or bytes; gt_lat, gt_lon, pred_lat, pred_lon: [N] degrees.
    Returns:
      float64 [N] great-circle distances in km.
    """
    coords = [_published(c) for c in (gt_lat, pred_lat, gt_lon, pred_lon)]
    dist = errors_km(gt_lat, gt_lon, pred_lat, pred_lon)
    ids = [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in img_ids]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")       # the published files' line ends
        w.writerow(RESULTS_COLUMNS)
        for row in zip(ids, *coords, dist):
            w.writerow([row[0], *(f"{v:.{COORDINATE_DECIMALS}f}" for v in row[1:5]),
                        f"{row[5]:.{DISTANCE_DECIMALS}f}"])
        f.write("\r\n")
        w.writerow(SUMMARY_COLUMNS)
        w.writerow(summary_row(dist))
    return dist


def _lines(path: pathlib.Path) -> list:
    """The file's lines, whatever mix of CRLF, LF and CR ends them."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a UTF-8 text file ({err})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _numbers(path, first_line: int, rows: list, width: int, what: str) -> np.ndarray:
    """float64 [len(rows), width] of csv rows; names the first line that is not `width` numbers."""
    values = np.full((len(rows), width), np.nan)
    for k, row in enumerate(rows):
        try:
            if len(row) != width:
                raise ValueError
            values[k] = [float(v) for v in row]
        except ValueError:
            raise InputError(f"{path}: line {first_line + k}: expected {width} numbers ({what}), "
                             f"got {','.join(row)!r}") from None
        if not np.isfinite(values[k]).all():
            raise InputError(f"{path}: line {first_line + k}: {what} must be finite numbers, "
                             f"got {','.join(row)!r}")
    return values


def read_results_csv(path) -> Results:
    """Reads a results file as published (or as `write_results_csv` writes it).

    Raises:
      InputError naming the file (and line): a missing file, a header without the columns or
      with a column twice, no rows, a row whose coordinates are not numbers, an img_id on two
      rows, a summary block that is malformed or disagrees with the rows (beyond the published
      rounding).
    """
    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise InputError(f"{path}: predictions file not found")
    lines = _lines(path)
    header = next(csv.reader(lines[:1]), [])
    missing = [c for c in RESULTS_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}: line 1: no column {', '.join(missing)}; expected the header "
                         f"{','.join(RESULTS_COLUMNS)}")
    end = next((k for k, line in enumerate(lines) if k > 0 and not line.strip()), len(lines))
    rows = list(csv.reader(lines[1:end]))
    if not rows:
        raise InputError(f"{path}: a header and no rows; expected one row per image")
    short = next((k for k, row in enumerate(rows) if len(row) != len(header)), None)
    if short is not None:
        raise InputError(f"{path}: line {short + 2}: {len(rows[short])} fields, the header has "
                         f"{len(header)}")
    refuse_repeated_columns(path, header)
    columns = [header.index(c) for c in RESULTS_COLUMNS]
    coords = _numbers(path, 2, [[row[i] for i in columns[1:5]] for row in rows], 4,
                      "gt_lat, predicted_lat, gt_long, predicted_long")
    # Recomputed from the coordinates, so a file is scored by the same haversine as evaluate.
    dist = great_circle_km(coords[:, 0], coords[:, 2], coords[:, 1], coords[:, 3])
    ids = [row[columns[0]] for row in rows]
    first = {}
    for k, image_id in enumerate(ids):
        if first.setdefault(image_id, k) != k:     # a photo scored twice
            raise InputError(f"{path}: line {k + 2}: img_id {image_id!r} appears again (first on line "
                             f"{first[image_id] + 2}); each photo is scored once")
    results = Results(ids=ids, gt_lat_deg=coords[:, 0],
                      pred_lat_deg=coords[:, 1], gt_lon_deg=coords[:, 2], pred_lon_deg=coords[:, 3],
                      dist_km=dist)
    block = [(k + 1, line) for k, line in enumerate(lines[end:], start=end) if line.strip()]
    if block:
        results.summary = _read_summary(path, block, dist)
    return results


def _read_summary(path, block, dist_km) -> dict:
    """The summary block [(line number, text)], checked against the rows' distances [N] km."""
    (header_line, header_text), *rest = block
    header = next(csv.reader([header_text]))
    if tuple(h.strip() for h in header) != SUMMARY_COLUMNS or len(rest) != 1:
        raise InputError(f"{path}: line {header_line}: after the rows and an empty line expected "
                         f"the summary header {','.join(SUMMARY_COLUMNS)} and one summary row")
    line, text = rest[0]
    stated = _numbers(path, line, list(csv.reader([text])), len(SUMMARY_COLUMNS), "the summary")[0]
    actual = summary_row(dist_km)
    # The published rounding (6 decimals, 2 for the mean) plus the rows' own 2-decimal distances.
    tolerance = [0.5 * 10.0 ** -FRACTION_DECIMALS + 1e-9] * len(THRESHOLDS_KM) + [0.01]
    for name, s, a, tol in zip(SUMMARY_COLUMNS, stated, actual, tolerance):
        if abs(s - a) > tol:
            raise InputError(f"{path}: line {line}: the summary gives {name} = {s:g} but its "
                             f"{len(dist_km)} rows give {a:g}")
    return dict(zip(SUMMARY_COLUMNS, stated.tolist()))
