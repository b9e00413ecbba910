"""How sure the top cell is (beyond the paper): per photo, the predicted cell's probability, whether
it holds the true location, the error of its point and whether the true cell is in each
confidence region; and their summary over a test or validation set (cell-set coverage, ECE,
reliability bins, the accuracy-coverage curve). Used by the calibration report and by evaluate.
"""
import numpy as np

from geoest.geo.calibration_metrics import accuracy_coverage, calibration_bins, expected_calibration_error
from geoest.geo.confidence import Confidence
from geoest.geo.distance import THRESHOLDS_KM, great_circle_km
from geoest.geo.regions import in_region, mass_key, region_sizes

CONFIDENCE_FIELDS = ("probability", "correct", "dist_km")


def confidence_scores(probs_fine, lat_deg, lon_deg, confidence: Confidence, predicted=None) -> dict:
    """Per photo: the predicted cell's probability, whether it holds the true location, the error
    of its point (km) and, per mass, whether the true cell is among the region's cells; every array [B].

    Args:
      probs_fine: float [B, n_fine] distributions over the finest cells.
      lat_deg, lon_deg: float [B] true locations.
      confidence: a `geoest.geo.confidence.Confidence` without cap, of the same cells.
      predicted: int [B] the predicted cells (default: the most probable ones).
    """
    probs_fine = np.asarray(probs_fine, np.float64)
    best = np.argmax(probs_fine, axis=-1) if predicted is None else np.asarray(predicted)
    answer = confidence(probs_fine, best)
    fine = confidence.partitionings[-1]
    truth = fine.assign(np.clip(lat_deg, -90, 90), np.clip(lon_deg, -180, 180))
    out = {"probability": answer["probability"], "correct": truth == best,
           "dist_km": great_circle_km(lat_deg, lon_deg, answer["lat"], answer["lon"])}
    for p in confidence.masses:
        key = mass_key(p)
        order, sizes = region_sizes(probs_fine, p)
        inside = in_region(order, sizes)[np.arange(len(truth)), np.maximum(truth, 0)] & (truth >= 0)
        out[f"in_cells_{key}"] = inside
    return out


def confidence_summary(scores: dict, masses) -> dict:
    """Cell-set coverage of each region, ECE, reliability bins and the accuracy-coverage curve of many photos
    (coverage of the radius R_p: `geoest.geo.how_sure.evaluation_figures`).

    Args:
      scores: `confidence_scores` arrays concatenated over photos ([N] each).
      masses: the p of the radii.
    Returns:
      {"images": N, "cell_coverage": {"50": f, ...} (true cell among the region's cells), "ece": f,
       "reliability": {...lists}, "accuracy_coverage_area": {"1": f, ...},
       "most_confident_half": {"1": f, ...}, "all": {"1": f, ...}}.
    """
    keys = {p: mass_key(p) for p in masses}
    curve = accuracy_coverage(scores["dist_km"], scores["probability"])
    half = max(1, int(round(len(scores["dist_km"]) / 2))) - 1
    bins = calibration_bins(scores["probability"], scores["correct"])
    return {
        "images": int(len(scores["dist_km"])),
        "cell_coverage": {keys[p]: float(np.mean(scores[f"in_cells_{keys[p]}"])) for p in masses},
        "ece": expected_calibration_error(scores["probability"], scores["correct"]),
        "mean_probability": float(np.mean(scores["probability"])),
        "top_cell_accuracy": float(np.mean(scores["correct"])),
        "reliability": {k: np.asarray(v).tolist() for k, v in bins.items()},
        "accuracy_coverage_area": {str(t): curve["area"][t] for t in THRESHOLDS_KM},
        "most_confident_half": {str(t): float(curve["accuracy"][t][half]) for t in THRESHOLDS_KM},
        "all": {str(t): float(curve["accuracy"][t][-1]) for t in THRESHOLDS_KM},
    }


__all__ = ["CONFIDENCE_FIELDS", "confidence_scores", "confidence_summary"]
