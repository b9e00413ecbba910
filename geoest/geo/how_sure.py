"""How sure the answers are, measured on photos with known locations: the distance events
error <= R (P(error <= R) against what was true, also after a monotone map fitted on validation
photos), the coverage of R_p, the ranking by P(error <= R) and the back-off on it; the figures
(`how_sure_figures`, `photo_scores`, `evaluation_figures`) and the lines a person reads of them
(`how_sure_lines`, `evaluation_lines`).

Units: km for distances, probabilities in [0, 1].
"""
import numpy as np
from scipy.optimize import isotonic_regression

from geoest.geo.back_off import finest_level_reaching, level_names
from geoest.geo.calibration_metrics import expected_calibration_error, ranking_curves
from geoest.geo.checks import check_masses, check_min_confidence, check_radii, plain_values
from geoest.geo.distance import THRESHOLDS_KM, great_circle_km
from geoest.geo.distance_temperature import EVENT_RADII_KM, fit_distance_temperature, sharpen
from geoest.geo.distance_weights import WithinWeights
from geoest.geo.regions import in_region, region_sizes

BACK_OFF_RADII_KM = (750.0, 200.0, 25.0)       # back-off levels, coarse to fine: coarse / middle / fine


def fit_monotone(score, hit) -> tuple:
    """A monotone map of P(error <= R) fitted on validation photos (isotonic regression).

    Returns:
      (x float64 [M], y float64 [M]): knots; `apply_monotone` reads linearly between them.
    """

    score = np.asarray(score, np.float64).ravel()
    order = np.argsort(score, kind="stable")
    fitted = isotonic_regression(np.asarray(hit, np.float64).ravel()[order]).x
    return score[order], fitted


def apply_monotone(knots: tuple, score) -> np.ndarray:
    """The monotone map `fit_monotone` returned, at `score` (clamped to the knots' range)."""
    x, y = knots
    return np.interp(np.asarray(score, np.float64), x, y)


def event_figures(score, hit, bins: int = 10) -> dict:
    """{"predicted": mean P, "observed": share of hits, "ece": ECE over `bins` equal-width bins}."""
    score, hit = np.asarray(score, np.float64), np.asarray(hit, bool)
    return {"predicted": float(score.mean()), "observed": float(hit.mean()),
            "ece": expected_calibration_error(score, hit, bins)}


def how_sure_figures(weights: WithinWeights, test: dict, validation: dict, masses=(0.5, 0.9),
                     radii_km=EVENT_RADII_KM, ranking_radii_km=(25.0, 750.0), back_off_radii_km=BACK_OFF_RADII_KM,
                     min_confidence: float = 0.5, draws: int = 200) -> dict:
    """How sure the answers are, measured on test photos, with the distance events calibrated on validation.

    Args:
      weights: W_R of the fine partitioning.
      test, validation: {"probs": float [N, n] f* (after the per-head temperatures), "predicted": int [N]
        the answered cells, "dist_km": float [N] errors, optional "raw": float [N, n] f* without any
        temperature, optional "in_cell": bool [N] (the true location lies in a cell)}.
      masses: p of R_p; radii_km: the events; ranking_radii_km: the accuracy-coverage curves;
      back_off_radii_km: R per back-off level, coarse to fine; min_confidence: q of the back-off.
    Returns:
      {"photos", "validation_photos", "in_no_cell", "distance_temperature",
       "events": {R: {variant: event_figures}} with variants "raw", "temperatures", "distance"
         (the extra temperature), "monotone" (one isotonic map per R),
       "radius": {variant: {p: {"coverage", "median_km"}}},
       "ranking": {R: ranking_curves' scalars, ranked by the calibrated P(error <= R)},
       "back_off": {"q", "no_answer", "levels": {R: {"answered", "accuracy"}}}}; keys are strings.
    """
    def key(value):
        return f"{value:g}"

    masses, min_confidence = check_masses(plain_values(masses)), check_min_confidence(min_confidence)
    radii_km, ranking_radii_km = check_radii(radii_km), check_radii(ranking_radii_km)
    fit = fit_distance_temperature(weights, validation["probs"], validation["predicted"], validation["dist_km"],
                                   radii_km)
    temperature = fit["temperature"]
    dist = np.asarray(test["dist_km"], np.float64)
    variants = {"temperatures": test["probs"], "distance": sharpen(test["probs"], temperature)}
    if test.get("raw") is not None:
        variants = {"raw": test["raw"], **variants}
    scores = {v: weights.within(p, test["predicted"], radii_km) for v, p in variants.items()}
    val_scores = weights.within(validation["probs"], validation["predicted"], radii_km)
    val_dist = np.asarray(validation["dist_km"], np.float64)
    events = {}
    for k, radius in enumerate(radii_km):
        hit = dist <= radius
        knots = fit_monotone(val_scores[:, k], val_dist <= radius)
        events[key(radius)] = {**{v: event_figures(s[:, k], hit) for v, s in scores.items()},
                               "monotone": event_figures(apply_monotone(knots, scores["temperatures"][:, k]), hit)}
    radius = {}
    for v, p in variants.items():
        r = weights.radius(p, test["predicted"], masses)
        radius[v] = {key(100 * m): {"coverage": float(np.mean(dist <= r[:, j])), "median_km": float(np.median(r[:, j]))}
                     for j, m in enumerate(masses)}
    calibrated = variants["distance"]
    ranking = {}
    for radius_km in ranking_radii_km:
        score = weights.within(calibrated, test["predicted"], [radius_km])[:, 0]
        curves = ranking_curves(dist, score, radius_km, draws=draws)
        ranking[key(radius_km)] = {k: curves[k] for k in ("half", "all", "area", "random_area_mean",
                                                           "random_area_high", "oracle_area")}
    at_levels = weights.within(calibrated, test["predicted"], back_off_radii_km)
    level = finest_level_reaching(at_levels, min_confidence)
    levels = {}
    for j, radius_km in enumerate(back_off_radii_km):
        chosen = level == j
        levels[key(radius_km)] = {"answered": float(chosen.mean()),
                                  "accuracy": float(np.mean(dist[chosen] <= radius_km)) if chosen.any() else None}
    in_cell = test.get("in_cell")
    return {"photos": int(len(dist)), "validation_photos": int(len(val_dist)),
            "in_no_cell": None if in_cell is None else float(1.0 - np.mean(in_cell)),
            "weights": weights.source, "distance_temperature": temperature, "events": events, "radius": radius,
            "ranking": ranking, "back_off": {"q": float(min_confidence), "no_answer": float(np.mean(level < 0)),
                                             "levels": levels}}


def photo_scores(weights: WithinWeights, probs_fine, predicted, truth_class, lat_deg, lon_deg, masses=(0.5, 0.9),
                 radii_km=THRESHOLDS_KM) -> dict:
    """Per test photo, how sure its answer is said to be and what was true (evaluate stores these).

    Args:
      weights: W_R of the fine cells; probs_fine: float [B, n] the distribution the statements are
        made from; predicted: int [B] the answered cells; truth_class: int [B] the fine cell holding
        the true location (-1: none); lat_deg, lon_deg: float [B] true locations, degrees.
      masses: p of R_p and of the cell sets; radii_km: the radii of P(error <= R).
    Returns:
      {"p_within": float64 [B, K], "radius_km": float64 [B, M] R_p km, "in_cells": bool [B, M] (the true
       cell is among the smallest set of cells holding p), "in_cell": bool [B] (the true location lies
       in a cell at all), "dist_km": float64 [B] the error of the answered point}.
    """
    probs = np.asarray(probs_fine, np.float64)
    predicted = np.asarray(predicted, np.int64).ravel()
    truth = np.asarray(truth_class, np.int64).ravel()
    sets = []
    for p in masses:
        order, sizes = region_sizes(probs, p)
        sets.append(in_region(order, sizes)[np.arange(len(truth)), np.maximum(truth, 0)] & (truth >= 0))
    points = weights.points[predicted]
    return {"p_within": weights.within(probs, predicted, radii_km), "radius_km": weights.radius(probs, predicted, masses),
            "in_cells": np.stack(sets, axis=-1).reshape(len(truth), len(masses)), "in_cell": truth >= 0,
            "dist_km": great_circle_km(lat_deg, lon_deg, points[:, 0], points[:, 1])}


def evaluation_figures(scores: dict, masses=(0.5, 0.9), radii_km=THRESHOLDS_KM, back_off_radii_km=BACK_OFF_RADII_KM,
                       min_confidence: float = 0.5, ranked: str | None = None, draws: int = 200) -> dict:
    """What evaluate reports of P(error <= R) and R_p on test photos (confidence.json: <method>/within).

    Args:
      scores: {variant: `photo_scores` concatenated over the photos} (variants: "before" the raw f*,
        "after" with the temperatures, "distance" with the distance temperature too); the photos and
        their errors are the same in every variant.
      masses, radii_km: as given to `photo_scores`; back_off_radii_km: R per back-off level, coarse to
        fine (each one of radii_km); min_confidence: q of the back-off.
      ranked: the variant ranking, back-off and curves use (default: the last one, the calibrated).
    Returns:
      {"photos": N, "in_no_cell": share of photos whose true location lies in no cell,
       "events": {R: {variant: {"predicted", "observed", "ece"}}},
       "radius": {variant: {p: {"coverage" (true location within R_p), "median_km", "cell_coverage" (true
         cell among the region's cells, all photos), "cell_coverage_in_a_cell" (of the photos in a cell)}}},
       "ranking": {R: {"half", "all", "area", "random_area_mean", "random_area_high", "oracle_area"}},
       "back_off": {"q", "no_answer", "levels": {level name: {"radius_km", "answered", "accuracy"}}}};
      keys of R and p are strings ("25", "50").
    """
    def key(value):
        return f"{value:g}"

    masses, min_confidence = check_masses(plain_values(masses)), check_min_confidence(min_confidence)
    radii_km = check_radii(radii_km)
    variants = list(scores)
    ranked = ranked or variants[-1]
    first = scores[variants[0]]
    dist, in_cell = np.asarray(first["dist_km"], np.float64), np.asarray(first["in_cell"], bool)
    radii = [float(r) for r in radii_km]
    events = {key(r): {v: event_figures(scores[v]["p_within"][:, k], dist <= r) for v in variants}
              for k, r in enumerate(radii)}
    radius = {v: {key(100 * p): {"coverage": float(np.mean(dist <= scores[v]["radius_km"][:, j])),
                                 "median_km": float(np.median(scores[v]["radius_km"][:, j])),
                                 "cell_coverage": float(np.mean(scores[v]["in_cells"][:, j])),
                                 "cell_coverage_in_a_cell": float(np.mean(scores[v]["in_cells"][in_cell, j]))
                                 if in_cell.any() else None}
                  for j, p in enumerate(masses)} for v in variants}
    ranking = {}
    for k, r in enumerate(radii):
        curves = ranking_curves(dist, scores[ranked]["p_within"][:, k], r, draws=draws)
        ranking[key(r)] = {name: curves[name] for name in ("half", "all", "area", "random_area_mean",
                                                           "random_area_high", "oracle_area")}
    at_levels = scores[ranked]["p_within"][:, [radii.index(float(r)) for r in back_off_radii_km]]
    level = finest_level_reaching(at_levels, min_confidence)
    names = level_names(len(back_off_radii_km))
    levels = {}
    for j, r in enumerate(back_off_radii_km):
        chosen = level == j
        levels[names[j]] = {"radius_km": float(r), "answered": float(chosen.mean()),
                            "accuracy": float(np.mean(dist[chosen] <= r)) if chosen.any() else None}
    return {"photos": int(len(dist)), "in_no_cell": float(1.0 - in_cell.mean()), "ranked": ranked, "events": events,
            "radius": radius, "ranking": ranking,
            "back_off": {"q": float(min_confidence), "no_answer": float(np.mean(level < 0)), "levels": levels}}


def _event_lines(events: dict) -> list:
    return [f"P(error <= {radius} km): " + "; ".join(
        f"{v} {f['predicted']:.1%} predicted / {f['observed']:.1%} observed, ECE {f['ece']:.3f}" for v, f in by.items())
        for radius, by in events.items()]


def _ranking_lines(ranking: dict) -> list:
    return [f"within {radius} km: the most confident half {r['half']:.1%}, all photos {r['all']:.1%}; "
            f"area {r['area']:.1%} (random {r['random_area_mean']:.1%}, upper edge {r['random_area_high']:.1%}; "
            f"oracle {r['oracle_area']:.1%})" for radius, r in ranking.items()]


def _radius_lines(radius: dict) -> list:
    """R_p's coverage per variant ("before", "after", ...): of the radius and, where given, of its cells."""
    return [f"R_p ({v}): " + ", ".join(
        f"R_{float(p.replace('_', '.')) / 100:g} covers {f['coverage']:.1%} (median {f['median_km']:,.0f} km)"
        + (f", its cells {f['cell_coverage']:.1%}" if "cell_coverage" in f else "") for p, f in by.items())
        for v, by in radius.items()]


def _back_off_line(back_off: dict, levels: dict) -> str:
    """Back-off at q: {label: {"answered", "accuracy"}} per level, then the share given no answer."""
    return (f"back-off at q = {back_off['q']:g}: " + ", ".join(
        f"{label} answered {f['answered']:.1%}" + ("" if f["accuracy"] is None else f" ({f['accuracy']:.1%} right)")
        for label, f in levels.items()) + f"; no answer {back_off['no_answer']:.1%}")


def _figure_lines(first: str, figures: dict, level_label) -> list:
    """The events, radii, ranking and back-off of `figures` as lines, after `first`; a back-off level
    is labelled `level_label(name, figures of the level)`."""
    b = figures["back_off"]
    return [first, *_event_lines(figures["events"]), *_radius_lines(figures["radius"]),
            *_ranking_lines(figures["ranking"]),
            _back_off_line(b, {level_label(name, f): f for name, f in b["levels"].items()})]


def evaluation_lines(figures: dict) -> list:
    """The figures of `evaluation_figures` as lines a person reads."""
    first = (f"{figures['photos']} photos, {figures['in_no_cell']:.1%} of them in no cell (counted as misses of "
             f"every cell set); ranked, backed off: {figures['ranked']}")
    return _figure_lines(first, figures, lambda name, f: f"{name} (within {f['radius_km']:g} km)")


def how_sure_lines(figures: dict) -> list:
    """The figures of `how_sure_figures` as lines a person reads."""
    first = (f"distance temperature fitted on {figures['validation_photos']} validation photos (all, in a cell "
             f"or not): T = {figures['distance_temperature']:.2f}; weights W_R from the {figures['weights']}")
    return _figure_lines(first, figures, lambda radius, f: f"within {radius} km")


__all__ = ["BACK_OFF_RADII_KM", "apply_monotone", "evaluation_figures", "evaluation_lines", "event_figures",
           "fit_monotone", "how_sure_figures", "how_sure_lines", "photo_scores"]
