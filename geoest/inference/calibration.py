"""Temperature scaling (beyond the paper): how far to trust the probabilities of §3.4.

A trained classifier's softmax is usually over-confident. One temperature T per head divides
its logits before the softmax (T > 1 softens, T < 1 sharpens; the ranking of the cells stays);
the hierarchy f* gets one more, p*(c)^(1/T) renormalised. Each is the T that minimises the negative
log-likelihood of the true cell on the validation set, head temperatures first, then f*'s on
the calibrated heads. They are stored in the model dir (`calibration.json`) with the SHA-256 of the
model file they were fitted for, and used by evaluate, predict and export.

    calibration = fit_calibration(geo_model, batches)          # batches: callable -> iterable
    calibration.save(model_dir)
    calibration = load_calibration(geo_model)                   # None when the model dir has none
    model = calibration.wrap(geo_model.model)                   # logits / T per head
"""
import dataclasses
import hashlib
import json
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.geo import confidence as conf
from geoest.geo import within
from geoest.geo.distance import great_circle_km
from geoest.heads import output_sizes
from geoest.inference.core import HIERARCHY, Locator, crop_probabilities, model_outputs
from geoest.inference.modeldir import model_file

CALIBRATION_FILE = "calibration.json"
RAW = "raw/"          # prefix of the uncalibrated outputs of `TemperedModel(keep_raw=True)`
# Candidate temperatures, log-spaced (about 10 % apart); the minimum is refined by a parabola.
GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 64))
_TINY = 1e-300


# -- the fit --------------------------------------------------------------------------------------
def _log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def nll_grid(logits, labels, temperatures=GRID) -> np.ndarray:
    """Summed negative log-likelihood of the labels at each temperature.

    Args:
      logits: float [N, n] or [N, crops, n]; with crops, the probability is the crops' mean
        softmax (§3.4), as at test time.
      labels: int [N]; images with a label < 0 (in no cell) are left out.
      temperatures: float [T].
    Returns:
      float64 [T].
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim == 2:
        logits = logits[:, None]
    labels = np.asarray(labels, np.int64)
    keep = labels >= 0
    logits, labels = logits[keep], labels[keep]
    out = np.zeros(len(temperatures))
    if not len(labels):
        return out
    for k, t in enumerate(temperatures):
        log_p = np.take_along_axis(_log_softmax(logits / t), labels[:, None, None], axis=-1)[..., 0]  # [N, crops]
        top = log_p.max(axis=1, keepdims=True)
        log_mean = top[:, 0] + np.log(np.exp(log_p - top).mean(axis=1))
        out[k] = -log_mean.sum()
    return out


def best_temperature(nll, temperatures=GRID) -> float:
    """The minimum of a NLL curve over the grid, refined by a parabola through its neighbours in log T."""
    nll = np.asarray(nll, np.float64)
    k = int(np.argmin(nll))
    if k == 0 or k == len(nll) - 1:
        return float(temperatures[k])
    x = np.log(temperatures[k - 1:k + 2])
    y = nll[k - 1:k + 2]
    denominator = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denominator
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denominator
    return float(np.exp(np.clip(-b / (2 * a), x[0], x[2]))) if a > 0 else float(temperatures[k])


def fit_temperature(logits, labels) -> float:
    """The temperature minimising the NLL of `labels` under softmax(logits / T) (see `nll_grid`)."""
    return best_temperature(nll_grid(logits, labels))


def temper(probs, temperature: float) -> np.ndarray:
    """p^(1/T) renormalised per row: the temperature of a distribution given as probabilities."""
    log_p = np.log(np.maximum(np.asarray(probs, np.float64), _TINY)) / temperature
    p = np.exp(log_p - log_p.max(axis=-1, keepdims=True)) * (np.asarray(probs) > 0)
    return p / np.maximum(p.sum(axis=-1, keepdims=True), _TINY)


def temper_tf(probs, temperature: float):
    """`temper` in TensorFlow: float [B, n] -> float32 [B, n]."""
    import tensorflow as tf

    probs = tf.cast(probs, tf.float64)
    log_p = tf.math.log(tf.maximum(probs, _TINY)) / temperature
    p = tf.exp(log_p - tf.reduce_max(log_p, axis=-1, keepdims=True)) * tf.cast(probs > 0, tf.float64)
    return tf.cast(p / tf.maximum(tf.reduce_sum(p, axis=-1, keepdims=True), _TINY), tf.float32)


# -- applying it ----------------------------------------------------------------------------------
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
    """The distance weights W_R of a model dir and its distance temperature (`geoest.geo.within`).

    Args:
      model_dir: the model dir (or None: no weights); fine_partitioning: the cells f* is over.
    Returns:
      (`WithinWeights` or None when the dir has no within_weights.npz, temperature or None).
    Raises:
      InputError naming the file: weights of other cells, a temperature fitted for another model.
    """
    path = pathlib.Path(model_dir) / within.FILE_NAME if model_dir else None
    if path is None or not path.is_file():
        return None, None
    weights = within.WithinWeights.load(path, fine_partitioning)
    return weights, within.load_distance_temperature(model_dir, weights, model_fingerprint(model_file(model_dir)))


# -- per-image confidence scores (calibration report and evaluation) ------------------------------
CONFIDENCE_FIELDS = ("probability", "correct", "dist_km")


def confidence_scores(probs_fine, lat_deg, lon_deg, confidence: conf.Confidence, predicted=None) -> dict:
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
        key = conf.mass_key(p)
        order, sizes = conf.region_sizes(probs_fine, p)
        inside = conf.in_region(order, sizes)[np.arange(len(truth)), np.maximum(truth, 0)] & (truth >= 0)
        out[f"in_cells_{key}"] = inside
    return out


def confidence_summary(scores: dict, masses) -> dict:
    """Cell-set coverage of each region, ECE, reliability bins and the accuracy-coverage curve of many photos
    (coverage of the radius R_p: `geoest.geo.within.evaluation_figures`).

    Args:
      scores: `confidence_scores` arrays concatenated over photos ([N] each).
      masses: the p of the radii.
    Returns:
      {"images": N, "cell_coverage": {"50": f, ...} (true cell among the region's cells), "ece": f,
       "reliability": {...lists}, "accuracy_coverage_area": {"1": f, ...},
       "most_confident_half": {"1": f, ...}, "all": {"1": f, ...}}.
    """
    from geoest.geo.distance import THRESHOLDS_KM

    keys = {p: conf.mass_key(p) for p in masses}
    curve = conf.accuracy_coverage(scores["dist_km"], scores["probability"])
    half = max(1, int(round(len(scores["dist_km"]) / 2))) - 1
    bins = conf.calibration_bins(scores["probability"], scores["correct"])
    return {
        "images": int(len(scores["dist_km"])),
        "cell_coverage": {keys[p]: float(np.mean(scores[f"in_cells_{keys[p]}"])) for p in masses},
        "ece": conf.expected_calibration_error(scores["probability"], scores["correct"]),
        "mean_probability": float(np.mean(scores["probability"])),
        "top_cell_accuracy": float(np.mean(scores["correct"])),
        "reliability": {k: np.asarray(v).tolist() for k, v in bins.items()},
        "accuracy_coverage_area": {str(t): curve["area"][t] for t in THRESHOLDS_KM},
        "most_confident_half": {str(t): float(curve["accuracy"][t][half]) for t in THRESHOLDS_KM},
        "all": {str(t): float(curve["accuracy"][t][-1]) for t in THRESHOLDS_KM},
    }


def fit_calibration(geo_model, batches, masses=conf.DEFAULT_MASSES, centers: str = "mean") -> Calibration:
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
            log_p = np.log(np.maximum(np.asarray(probs[HIERARCHY], np.float64), _TINY))
            curve += nll_grid(log_p, _labels(fine, batch))
        calibration.temperatures[HIERARCHY] = best_temperature(curve)
    confidence = conf.Confidence([fine], masses=masses, centers=centers)
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
    import re

    config = pathlib.Path(model_dir) / "operative_config.gin"
    if not config.is_file():
        return None
    text = config.read_text(encoding="utf-8")
    for pattern in (r"^tfrecord_inputs\.validation_files = '([^']+)'", r"^VALIDATION_FILES = '([^']+)'"):
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            return match.group(1)
    return None


def calibrate_model_dir(model_dir, batches=None, *, masses=conf.DEFAULT_MASSES, batch_size: int = 16,
                        partitioning_csvs=(), centers: str = "mean") -> Calibration:
    """Fits, saves and reports the temperatures of a trained model dir.

    Writes <model_dir>/calibration.json and <model_dir>/reliability.png (before and after).

    Args:
      model_dir: a `python -m geoest.train` model dir.
      batches: callable(image_size) -> iterable of validation batches (see `fit_calibration`);
        default: the validation records of the run's operative config.
    """
    from geoest.inference.modeldir import load_geo_model

    geo_model = load_geo_model(model_dir, partitioning_csvs)
    image_size = geo_model.model.input_shape[1]
    if batches is None:
        pattern = validation_files(geo_model.path.parent)
        if not pattern:
            raise InputError(f"{model_dir}: no validation records in its operative_config.gin; "
                             "pass --validation_records or --images_dir with --meta_csv")
        from geoest.inference.evaluation import record_batches
        batches = lambda size: record_batches(pattern, batch_size, size)   # noqa: E731
    calibration = fit_calibration(geo_model, lambda: batches(image_size), masses, centers)
    directory = geo_model.path.parent
    calibration.save(directory)
    plot_reliability({k: calibration.report[k] for k in ("before", "after")}, directory / "reliability.png",
                     title=f"{directory.name}: f* on {calibration.report['images']} validation photos")
    return calibration


def report_lines(report: dict) -> list:
    """Readable lines of a calibration report (or of evaluate's confidence summary)."""
    lines = []
    if "temperatures" in report:
        lines.append("temperatures: " + ", ".join(f"{k} {v:.3f}" for k, v in report["temperatures"].items()))
    for key in ("before", "after"):
        if key not in report:
            continue
        s = report[key]
        cells = ", ".join(f"{float(k.replace('_', '.')) / 100:g} {v:.1%}" for k, v in s["cell_coverage"].items())
        lines.append(f"{key + ' temperature scaling:':28s} true cell in the region's cells (mass {cells}); "
                     f"ECE of the top cell's probability {s['ece']:.3f}")
    return lines


def _labels(partitioning, batch) -> np.ndarray:
    lat = np.asarray(batch["lat"], np.float64)
    lon = np.asarray(batch["lon"], np.float64)
    ok = np.isfinite(lat) & np.isfinite(lon)
    labels = partitioning.assign(np.where(ok, np.clip(lat, -90, 90), 0.0), np.where(ok, np.clip(lon, -180, 180), 0.0))
    return np.where(ok, labels, -1)


def _concatenate(parts: list) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def plot_reliability(summaries: dict, path, title: str = "") -> None:
    """PNG reliability diagram: accuracy of the top cell against its predicted probability per bin.

    Args:
      summaries: {label: `confidence_summary` dict} (e.g. "before", "after").
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    for label, summary in summaries.items():
        bins = summary["reliability"]
        used = np.asarray(bins["count"]) > 0
        ax.plot(np.asarray(bins["confidence"])[used], np.asarray(bins["accuracy"])[used], marker="o",
                label=f"{label} (ECE {summary['ece']:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability of the top cell",
           ylabel="fraction whose top cell holds the true location", title=title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["CALIBRATION_FILE", "Calibration", "TemperedModel", "best_temperature", "calibrate_model_dir",
           "confidence_scores", "report_lines", "validation_files",
           "confidence_summary", "fit_calibration", "fit_temperature", "load_calibration", "model_fingerprint",
           "nll_grid", "plot_reliability", "temper", "temper_tf"]
