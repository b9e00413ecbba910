"""The distance temperature: one extra temperature T on f* so that P(error <= R) is calibrated
(`fit_distance_temperature`, on validation photos), applied as p^(1/T) renormalised (`sharpen`, and
`sharpen_tf` for the SavedModel), and stored in a model dir beside the distance weights it was fitted
with (`save_distance_temperature`, `load_distance_temperature`).

Units: km for distances, probabilities in [0, 1].
"""
import json
import math
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.files import write_text
from geoest.geo.distance_weights import WITHIN_WEIGHTS_FORMAT, WithinWeights

EVENT_RADII_KM = (25.0, 200.0, 750.0)          # the events a user acts on (the paper's thresholds)
DISTANCE_TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 49)))
DISTANCE_TEMPERATURE_FILE = "distance_temperature.json"


def sharpen(probs, temperature: float) -> np.ndarray:
    """p^(1/T) renormalised per row (T > 1 flattens, T < 1 sharpens); zeros stay zero. float64 [B, n]."""
    probs = np.asarray(probs, np.float64)
    log_p = np.log(np.maximum(probs, 1e-300)) / float(temperature)
    out = np.exp(log_p - log_p.max(axis=-1, keepdims=True)) * (probs > 0)
    return out / np.maximum(out.sum(axis=-1, keepdims=True), 1e-300)


def sharpen_tf(probs, temperature: float):
    """`sharpen` in TensorFlow: float [B, n] -> float64 [B, n]."""
    import tensorflow as tf

    probs = tf.cast(probs, tf.float64)
    log_p = tf.math.log(tf.maximum(probs, 1e-300)) / float(temperature)
    out = tf.exp(log_p - tf.reduce_max(log_p, axis=-1, keepdims=True)) * tf.cast(probs > 0, tf.float64)
    return out / tf.maximum(tf.reduce_sum(out, axis=-1, keepdims=True), 1e-300)


def _brier(score, hit) -> float:
    return float(np.mean((np.asarray(score, np.float64) - np.asarray(hit, np.float64)) ** 2))


def fit_distance_temperature(weights: WithinWeights, probs_fine, predicted, dist_km,
                             radii_km=EVENT_RADII_KM, temperatures=DISTANCE_TEMPERATURES) -> dict:
    """One extra temperature on f* so that P(error <= R) is calibrated: the T of the grid with the
    lowest Brier score of the events error <= R, summed over `radii_km`.

    Fitted on validation photos *including those in no cell*: the event is a distance, defined for
    every photo whose location is known.

    Args:
      weights: W_R; probs_fine: float [N, n] f* (after the per-head temperatures); predicted: int [N]
        the answered cells; dist_km: float [N] their errors.
    Returns:
      {"temperature": T, "brier": {T: summed Brier}, "photos": N}.
    """
    dist_km = np.asarray(dist_km, np.float64).ravel()
    hits = dist_km[:, None] <= np.asarray(radii_km, np.float64)[None, :]
    losses = {}
    for t in temperatures:
        scores = weights.within(sharpen(probs_fine, t), predicted, radii_km)
        losses[float(t)] = float(sum(_brier(scores[:, k], hits[:, k]) for k in range(len(radii_km))))
    best = min(losses, key=losses.get)
    return {"temperature": best, "brier": losses, "photos": int(len(dist_km))}


def save_distance_temperature(model_dir, temperature: float, weights: WithinWeights, model: str) -> pathlib.Path:
    """Writes the distance temperature of `fit_distance_temperature` into model_dir (whole or not at all).

    Args:
      temperature: T > 0; weights: the W_R it was fitted with; model: the fingerprint of the model
        file (SHA-256) whose f* it tempers.
    """

    path = pathlib.Path(model_dir) / DISTANCE_TEMPERATURE_FILE
    write_text(path, json.dumps({"format": WITHIN_WEIGHTS_FORMAT, "temperature": float(temperature),
                                 "weights": weights.digest, "model": str(model)}) + "\n")
    return path


def load_distance_temperature(model_dir, weights: WithinWeights, model: str):
    """The distance temperature stored in model_dir for these weights and model, or None when there is none.

    Raises:
      InputError: the file was fitted for other weights or another model, or is not one geoest wrote.
    """

    path = pathlib.Path(model_dir) / DISTANCE_TEMPERATURE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        temperature = float(data["temperature"])
        fitted_for = (data["weights"], data["model"])
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a distance temperature written by geoest ({err})") from None
    if fitted_for != (weights.digest, str(model)):
        raise InputError(f"{path}: fitted for other distance weights or another model file than those in "
                         f"{path.parent}; fit it again (make demo, or delete it)")
    if not temperature > 0.0 or not math.isfinite(temperature):
        raise InputError(f"{path}: temperature {temperature} must be above 0")
    return temperature


__all__ = ["DISTANCE_TEMPERATURES", "DISTANCE_TEMPERATURE_FILE", "EVENT_RADII_KM", "fit_distance_temperature",
           "load_distance_temperature", "save_distance_temperature", "sharpen", "sharpen_tf"]
