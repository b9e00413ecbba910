"""The results-file format published with the paper, and its scores (Table 6, Table 4)."""
import csv
import os
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.geo.distance import THRESHOLDS_KM, accuracy_at, great_circle_km
from geoest.scene.places365 import CONCEPTS  # S3_Label 0, 1, 2 (§3.2)

RESULTS_COLUMNS = ("img_id", "gt_lat", "predicted_lat", "gt_long", "predicted_long",
                   "great_circle_distance")


def summarize(dist_km) -> dict:
    """{"count": N, "accuracy": {"1": f, ..., "2500": f}, "median_km": f, "mean_km": f}."""
    dist_km = np.asarray(dist_km, dtype=np.float64).ravel()
    if dist_km.size == 0:
        return {"count": 0, "accuracy": {str(t): None for t in THRESHOLDS_KM},
                "median_km": None, "mean_km": None}
    return {"count": int(dist_km.size),
            "accuracy": {str(t): v for t, v in accuracy_at(dist_km).items()},
            "median_km": float(np.median(dist_km)), "mean_km": float(np.mean(dist_km))}


def write_results_csv(path, img_ids, gt_lat, gt_lon, pred_lat, pred_lon) -> np.ndarray:
    """Writes one row per image in the published format; returns the distances in km [N]."""
    dist = great_circle_km(gt_lat, gt_lon, pred_lat, pred_lon)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(RESULTS_COLUMNS)
        for row in zip(img_ids, np.asarray(gt_lat).tolist(), np.asarray(pred_lat).tolist(),
                       np.asarray(gt_lon).tolist(), np.asarray(pred_lon).tolist(), dist.tolist()):
            w.writerow([row[0].decode() if isinstance(row[0], bytes) else row[0], *row[1:]])
    return dist


def read_results_csv(path):
    """Reads a results file. Returns (img_ids list[str], dist_km np.float64 [N])."""
    import pandas as pd

    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise InputError(f"{path}: predictions file not found")
    try:
        df = pd.read_csv(path, dtype={"img_id": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise InputError(f"{path}: not a results CSV ({err})") from None
    missing = [c for c in RESULTS_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)}; expected "
                         f"{','.join(RESULTS_COLUMNS)}")
    coords = df[list(RESULTS_COLUMNS[1:5])].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1).to_numpy()
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise InputError(f"{path}: line {line}: coordinates must be numbers")
    # Recomputed from the coordinates, so a file is scored by the same haversine as evaluate.
    dist = great_circle_km(coords["gt_lat"], coords["gt_long"], coords["predicted_lat"],
                           coords["predicted_long"])
    return df["img_id"].tolist(), dist


def read_scene_labels(meta_csv) -> dict:
    """IMG_ID -> S3 label (0 indoor, 1 natural, 2 urban) from an Im2GPS-format meta CSV."""
    import pandas as pd

    meta_csv = pathlib.Path(os.fspath(meta_csv))
    if not meta_csv.is_file():
        raise InputError(f"{meta_csv}: meta CSV not found")
    df = pd.read_csv(meta_csv, dtype={"IMG_ID": str})
    for column in ("IMG_ID", "S3_Label"):
        if column not in df.columns:
            raise InputError(f"{meta_csv}: no column {column!r}; the header has "
                             f"{', '.join(df.columns)}")
    labels = pd.to_numeric(df["S3_Label"], errors="coerce")
    bad = ~labels.isin([0, 1, 2]).to_numpy()
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise InputError(f"{meta_csv}: line {line}: S3_Label {df['S3_Label'].iloc[line - 2]!r} "
                         "is not 0 (indoor), 1 (natural) or 2 (urban)")
    return dict(zip(df["IMG_ID"], labels.astype(int)))


def score_file(predictions_csv, meta_csv=None) -> dict:
    """Scores of a results file: {"all": summary} plus one summary per concept with a meta CSV.

    Images of the results file missing from the meta CSV are an error naming the first one.
    """
    ids, dist = read_results_csv(predictions_csv)
    scores = {"all": summarize(dist)}
    if meta_csv is not None:
        scene = read_scene_labels(meta_csv)
        missing = [i for i in ids if i not in scene]
        if missing:
            raise InputError(f"{meta_csv}: no row for image {missing[0]!r} of "
                             f"{predictions_csv} ({len(missing)} images missing)")
        labels = np.array([scene[i] for i in ids])
        for k, concept in enumerate(CONCEPTS):
            scores[concept] = summarize(dist[labels == k])
    return scores
