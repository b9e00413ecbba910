"""Scores of many answers: how well a stated probability matches what was right.

  * the reliability of the predicted cell's probability over equal-width bins and its expected
    calibration error (`calibration_bins`, `expected_calibration_error`);
  * accuracy against the fraction of photos answered, most confident first (`accuracy_coverage`,
    `accuracy_of_most_confident`), and the same beside random orders and the oracle
    (`ranking_curves`).

Units: km for errors, probabilities in [0, 1].
"""
import numpy as np

from geoest.geo.distance import THRESHOLDS_KM


def calibration_bins(confidence, correct, bins: int = 15) -> dict:
    """Reliability of a predicted probability: equal-width bins over [0, 1].

    Args:
      confidence: float [N] predicted probability of the top cell.
      correct: bool [N] whether the top cell holds the true location.
    Returns:
      {"edges": [bins + 1], "count": int [bins], "confidence": mean per bin, "accuracy": per bin}
      (NaN for empty bins).
    """
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    table = calibration_bins(confidence, correct, bins)
    used = table["count"] > 0
    weights = table["count"][used] / max(table["count"].sum(), 1)
    return float(np.sum(weights * np.abs(table["accuracy"][used] - table["confidence"][used])))


def accuracy_coverage(dist_km, confidence, thresholds=THRESHOLDS_KM) -> dict:
    """Accuracy against the fraction of photos answered, most confident first.

    Args:
      dist_km: float [N] errors in km; confidence: float [N] (ties: the order given).
    Returns:
      {"coverage": float [N] (1/N .. 1), "accuracy": {t: float [N]} fraction within t km of the
      answered photos, "area": {t: float} the mean of that curve (area under it over coverage)}.
    """
    dist_km = np.asarray(dist_km, np.float64)
    order = np.argsort(-np.asarray(confidence, np.float64), kind="stable")
    answered = np.arange(1, len(order) + 1)
    out = {"coverage": answered / max(len(order), 1), "accuracy": {}, "area": {}}
    for t in thresholds:
        curve = np.cumsum(dist_km[order] <= t) / answered
        out["accuracy"][t] = curve
        out["area"][t] = float(curve.mean()) if len(curve) else float("nan")
    return out


def accuracy_of_most_confident(dist_km, confidence, fraction: float, km: float) -> float:
    """Accuracy within `km` of the `fraction` of photos with the highest confidence."""
    curve = accuracy_coverage(dist_km, confidence, (km,))
    k = max(1, int(round(fraction * len(curve["coverage"])))) - 1
    return float(curve["accuracy"][km][k])


def ranking_curves(dist_km, score, radius_km: float, draws: int = 200, seed: int = 0) -> dict:
    """Accuracy within R of the photos answered, most confident first, beside random orders and the oracle.

    Args:
      dist_km: float [N] errors; score: float [N] the ranking score (e.g. P(error <= radius_km)).
      radius_km: R; draws: random orders for the band; seed: their seed.
    Returns:
      {"coverage": [N] (1/N .. 1), "accuracy": [N] ranked by score, "oracle": [N] ranked by the true
       error, "random_mean", "random_low", "random_high": [N] (mean and 2.5 / 97.5 % of random orders),
       "area", "oracle_area", "random_area_mean", "random_area_high" (97.5 %): means of those curves,
       "half": accuracy of the most confident half, "all": accuracy of all photos}.
    """
    dist_km = np.asarray(dist_km, np.float64).ravel()
    hit = (dist_km <= radius_km).astype(np.float64)
    n = len(hit)
    answered = np.arange(1, n + 1)

    def curve(order):
        return np.cumsum(hit[order], axis=-1) / answered

    rng = np.random.default_rng(seed)
    randoms = curve(np.argsort(rng.uniform(size=(draws, n)), axis=-1))
    ranked = curve(np.argsort(-np.asarray(score, np.float64).ravel(), kind="stable"))
    oracle = curve(np.argsort(dist_km, kind="stable"))
    areas = randoms.mean(axis=-1)
    half = max(1, int(round(0.5 * n))) - 1
    return {"coverage": answered / n, "accuracy": ranked, "oracle": oracle, "random_mean": randoms.mean(axis=0),
            "random_low": np.quantile(randoms, 0.025, axis=0), "random_high": np.quantile(randoms, 0.975, axis=0),
            "area": float(ranked.mean()), "oracle_area": float(oracle.mean()),
            "random_area_mean": float(areas.mean()), "random_area_high": float(np.quantile(areas, 0.975)),
            "half": float(ranked[half]), "all": float(hit.mean())}


__all__ = ["accuracy_coverage", "accuracy_of_most_confident", "calibration_bins", "expected_calibration_error",
           "ranking_curves"]
