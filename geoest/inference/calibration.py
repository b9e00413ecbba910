"""A model's temperatures (beyond the paper): how far to trust the probabilities of §3.4.

A trained classifier's softmax is usually over-confident. One temperature T per head divides its
logits before the softmax; the hierarchy f* gets one more, p*(c)^(1/T) renormalised
(`geoest.inference.temperature`; fitted by `geoest.inference.temperature_fit`). They are stored in
the model dir (`calibration.json`) with the SHA-256 of the model file they were fitted for, and used
by evaluate, predict and export; the model dir's distance weights W_R and distance temperature
(`geoest.geo.distance_weights`, `geoest.geo.distance_temperature`) are loaded beside them.

    calibration = load_calibration(geo_model)                   # None when the model dir has none
    model = calibration.wrap(geo_model.model)                   # logits / T per head
"""
import dataclasses
import hashlib
import json
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.geo.distance_temperature import load_distance_temperature
from geoest.geo.distance_weights import WITHIN_WEIGHTS_FILE, WithinWeights
from geoest.heads import output_sizes
from geoest.inference.core import HIERARCHY, Locator, model_outputs
from geoest.inference.modeldir import model_file
from geoest.inference.temperature import temper, temper_tf

CALIBRATION_FILE = "calibration.json"
RAW = "raw/"          # prefix of the uncalibrated outputs of `TemperedModel(keep_raw=True)`


class TemperedModel:
    """A Keras model whose logits are divided by each head's temperature (a callable like the model).

    With keep_raw, the undivided logits come too, under RAW + name, so one pass gives both.
    """

    def __init__(self, model, temperatures: dict, keep_raw: bool = False):
        self.model, self.temperatures, self.keep_raw = model, dict(temperatures), keep_raw
        self.output_names = list(model.output_names) + ([RAW + n for n in model.output_names] if keep_raw else [])

    def __call__(self, images, training=False):
        outputs = model_outputs(self.model, images)
        out = {name: logits / self.temperatures[name] if name in self.temperatures else logits
               for name, logits in outputs.items()}
        if self.keep_raw:
            out.update({RAW + name: logits for name, logits in outputs.items()})
        return out


def main_probabilities_tf(locator: Locator, probs: dict, calibration=None):
    """The main output's distribution over the finest cells in TensorFlow: f* (normalised, and
    tempered when `calibration` has a temperature for it) or the only partitioning's.

    Args:
      probs: dict head name -> float tensor [B, n_k] (mean crop probabilities, heads calibrated).
    Returns:
      float32 tensor [B, n_fine].
    """
    import keras
    import tensorflow as tf

    if locator.hierarchy is None:
        return tf.cast(probs[locator.main], tf.float32)
    joint = locator.hierarchy.f_star([tf.cast(probs[p.name], tf.float64) for p in locator.partitionings], keras.ops)
    if calibration is not None and HIERARCHY in calibration.temperatures:
        return temper_tf(joint, calibration.temperatures[HIERARCHY])
    return tf.cast(joint, tf.float32)


def model_fingerprint(path) -> str:
    """SHA-256 of a model file: a calibration belongs to exactly that file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class Calibration:
    """Temperatures per output (each head's name, and HIERARCHY for f*), and for which model.

    model_sha256: `model_fingerprint` of the model file; heads: {name: classes}; report: figures
    of the fit (images, NLL, coverage and ECE before and after) for people to read.
    """
    temperatures: dict
    model_sha256: str = ""
    heads: dict = dataclasses.field(default_factory=dict)
    report: dict = dataclasses.field(default_factory=dict)

    def wrap(self, model, keep_raw: bool = False) -> TemperedModel:
        """The model with its heads' logits divided by their temperatures."""
        return TemperedModel(model, {k: v for k, v in self.temperatures.items() if k != HIERARCHY}, keep_raw)

    def cell_probabilities(self, locator: Locator, probs: dict) -> dict:
        """`locator.cell_probabilities` with f* tempered by its own temperature (heads: already by `wrap`)."""
        out = locator.cell_probabilities(probs)
        if HIERARCHY in out and HIERARCHY in self.temperatures:
            out[HIERARCHY] = temper(out[HIERARCHY], self.temperatures[HIERARCHY]).astype(np.float32)
        return out

    def save(self, model_dir) -> pathlib.Path:
        path = pathlib.Path(model_dir) / CALIBRATION_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1, default=float) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


def load_calibration(geo_model, path=None):
    """The calibration of a model (`GeoModel`), or None when its dir has none.

    Args:
      geo_model: the loaded model, whose file and heads the calibration must match.
      path: a calibration file; None: `calibration.json` beside the model file if there is one;
        False: uncalibrated (returns None).
    Raises:
      InputError naming the file when it is unreadable or was fitted for another model.
    """
    if path is False:
        return None
    explicit = path is not None
    path = pathlib.Path(path) if explicit else pathlib.Path(geo_model.path).parent / CALIBRATION_FILE
    if not path.is_file():
        if explicit:
            raise InputError(f"temperature file {path} does not exist; fit one with python -m geoest.calibrate")
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        calibration = Calibration(**stored)
        temperatures = {k: float(v) for k, v in calibration.temperatures.items()}
    except (ValueError, TypeError) as error:
        raise InputError(f"temperature file {path} is not a geoest calibration ({error})") from None

    heads = output_sizes(geo_model.model)
    if calibration.model_sha256 != model_fingerprint(geo_model.path) or calibration.heads != heads:
        raise InputError(f"temperature file {path} was fitted for another model than {geo_model.path} "
                         "(retrained since?); fit it again with python -m geoest.calibrate --model_dir=...")
    bad = {k: v for k, v in temperatures.items() if not v > 0 or not np.isfinite(v)}
    if bad or not set(temperatures) <= set(heads) | {HIERARCHY}:
        raise InputError(f"temperature file {path}: temperatures {temperatures} must be positive and name "
                         f"the model's heads {sorted(heads)} or {HIERARCHY!r}")
    calibration.temperatures = temperatures
    return calibration


def load_distance_events(model_dir, fine_partitioning):
    """The distance weights W_R of a model dir and its distance temperature (`geoest.geo.distance_weights`, `geoest.geo.distance_temperature`).

    Args:
      model_dir: the model dir (or None: no weights); fine_partitioning: the cells f* is over.
    Returns:
      (`WithinWeights` or None when the dir has no within_weights.npz, temperature or None).
    Raises:
      InputError naming the file: weights of other cells, a temperature fitted for another model.
    """
    path = pathlib.Path(model_dir) / WITHIN_WEIGHTS_FILE if model_dir else None
    if path is None or not path.is_file():
        return None, None
    weights = WithinWeights.load(path, fine_partitioning)
    return weights, load_distance_temperature(model_dir, weights, model_fingerprint(model_file(model_dir)))


__all__ = ["CALIBRATION_FILE", "RAW", "Calibration", "TemperedModel", "load_calibration", "load_distance_events",
           "main_probabilities_tf", "model_fingerprint"]
