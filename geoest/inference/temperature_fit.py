"""Fitting a model's temperatures on validation data (beyond the paper), head temperatures first,
then f*'s on the calibrated heads, each by the NLL of the true cells (`geoest.inference.temperature`);
and the run on a trained model dir, which saves them (calibration.json) with a reliability diagram.

    calibration = fit_calibration(geo_model, batches)          # batches: callable -> iterable
    calibration.save(model_dir)
"""
import pathlib
import re

import numpy as np

from geoest.errors import InputError
from geoest.geo.confidence import Confidence
from geoest.geo.regions import DEFAULT_MASSES
from geoest.heads import output_sizes
from geoest.inference.batches import record_batches
from geoest.inference.calibration import RAW, Calibration, model_fingerprint
from geoest.inference.core import HIERARCHY, Locator, crop_probabilities, model_outputs
from geoest.inference.modeldir import load_geo_model
from geoest.inference.confidence_scores import confidence_scores, confidence_summary
from geoest.inference.report import plot_reliability
from geoest.inference.temperature import GRID, TINY, best_temperature, nll_grid


def fit_calibration(geo_model, batches, masses=DEFAULT_MASSES, centers: str = "mean") -> Calibration:
    """Fits the temperatures of a model on validation data by NLL and reports their effect.

    Args:
      geo_model: `geoest.inference.modeldir.GeoModel`.
      batches: callable() -> iterable of dicts {"crops": [B, 3, S, S, 3], "lat", "lon": [B]} (called
        three times: head temperatures, f*'s, then the report before and after).
      masses: region masses p of the coverage report.
    Returns:
      the Calibration (not yet saved), with its report.
    """
    locator = Locator(geo_model.partitionings, centers)
    fine = locator.partitionings[-1]
    heads = {p.name: p for p in locator.partitionings}
    nll = {name: np.zeros(len(GRID)) for name in heads}
    images = 0
    for batch in batches():                                         # 1. each head's temperature
        crops = np.asarray(batch["crops"], np.float32)
        flat = crops.reshape((-1,) + crops.shape[2:])
        outputs = model_outputs(geo_model.model, flat)
        for name, p in heads.items():
            logits = np.asarray(outputs[name], np.float64).reshape(len(crops), crops.shape[1], -1)
            nll[name] += nll_grid(logits, _labels(p, batch))
        images += len(crops)
    if not images:
        raise InputError("the validation data yielded no images to fit temperatures on")
    temperatures = {name: best_temperature(curve) for name, curve in nll.items()}
    calibration = Calibration(temperatures, model_fingerprint(geo_model.path), output_sizes(geo_model.model))
    if locator.hierarchy is not None:                               # 2. f*'s, on the calibrated heads
        curve = np.zeros(len(GRID))
        tempered = calibration.wrap(geo_model.model)
        for batch in batches():
            probs = locator.cell_probabilities({k: v.numpy() for k, v in crop_probabilities(tempered, batch["crops"]).items()})
            log_p = np.log(np.maximum(np.asarray(probs[HIERARCHY], np.float64), TINY))
            curve += nll_grid(log_p, _labels(fine, batch))
        calibration.temperatures[HIERARCHY] = best_temperature(curve)
    confidence = Confidence([fine], masses=masses, centers=centers)
    scores = {"before": [], "after": []}                            # 3. what it changes
    wrapped = calibration.wrap(geo_model.model, keep_raw=True)
    for batch in batches():
        probs = {k: v.numpy() for k, v in crop_probabilities(wrapped, batch["crops"]).items()}
        raw = locator.cell_probabilities({k[len(RAW):]: v for k, v in probs.items() if k.startswith(RAW)})[locator.main]
        calibrated = calibration.cell_probabilities(locator, probs)[locator.main]
        for key, p in (("before", raw), ("after", calibrated)):    # the answer: the raw model's cell
            scores[key].append(confidence_scores(p, batch["lat"], batch["lon"], confidence, np.argmax(raw, -1)))
    calibration.report = {"images": images, "temperatures": dict(calibration.temperatures), **{
        key: confidence_summary(_concatenate(parts), masses) for key, parts in scores.items()}}
    return calibration


def validation_files(model_dir) -> str | None:
    """The validation TFRecord pattern a model dir was trained with (its operative gin config)."""
    config = pathlib.Path(model_dir) / "operative_config.gin"
    if not config.is_file():
        return None
    text = config.read_text(encoding="utf-8")
    for pattern in (r"^tfrecord_inputs\.validation_files = '([^']+)'", r"^VALIDATION_FILES = '([^']+)'"):
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            return match.group(1)
    return None


def calibrate_model_dir(model_dir, batches=None, *, masses=DEFAULT_MASSES, batch_size: int = 16,
                        partitioning_csvs=(), centers: str = "mean") -> Calibration:
    """Fits, saves and reports the temperatures of a trained model dir.

    Writes <model_dir>/calibration.json and <model_dir>/reliability.png (before and after).

    Args:
      model_dir: a `python -m geoest.train` model dir.
      batches: callable(image_size) -> iterable of validation batches (see `fit_calibration`);
        default: the validation records of the run's operative config.
    """
    geo_model = load_geo_model(model_dir, partitioning_csvs)
    image_size = geo_model.model.input_shape[1]
    if batches is None:
        pattern = validation_files(geo_model.path.parent)
        if not pattern:
            raise InputError(f"{model_dir}: no validation records in its operative_config.gin; "
                             "pass --validation_records or --images_dir with --meta_csv")
        batches = lambda size: record_batches(pattern, batch_size, size)   # noqa: E731
    calibration = fit_calibration(geo_model, lambda: batches(image_size), masses, centers)
    directory = geo_model.path.parent
    calibration.save(directory)
    plot_reliability({k: calibration.report[k] for k in ("before", "after")}, directory / "reliability.png",
                     title=f"{directory.name}: f* on {calibration.report['images']} validation photos")
    return calibration


def _labels(partitioning, batch) -> np.ndarray:
    lat = np.asarray(batch["lat"], np.float64)
    lon = np.asarray(batch["lon"], np.float64)
    ok = np.isfinite(lat) & np.isfinite(lon)
    labels = partitioning.assign(np.where(ok, np.clip(lat, -90, 90), 0.0), np.where(ok, np.clip(lon, -180, 180), 0.0))
    return np.where(ok, labels, -1)


def _concatenate(parts: list) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


__all__ = ["calibrate_model_dir", "fit_calibration", "validation_files"]
