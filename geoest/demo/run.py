"""The paper end to end on the embedded demo data, every artifact in one folder.

    photos/        the synthetic collection (geoest.demo.data): images/, train.csv, val.csv, test.csv
    partitionings/ §3.1 coarse, middle and fine cells built from the training photos; cells.png
    tfrecords/     the photos as TFRecord shards (tools/build_tfrecords.py's library)
    model/         base(M, f*) trained with gin/demo.gin (best.keras, checkpoints, logs, operative config),
                   and its temperatures fitted on the validation photos (calibration.json, reliability.png)
    model_distance/ base(M, f*) trained the same way with distance-aware targets (beyond the paper)
    isn_<concept>/ ISNs(M, f*, S3) fine-tuned from model/ on each concept's photos (§3.3, §4)
    evaluation/    Table 6 on the test split: table6.txt, accuracy.png, summary.json, results_*.csv;
                   how sure the answers are: confidence.json, <method>/reliability.png, accuracy_coverage.png
    predictions/   a few test photos located: predictions.csv, predictions.geojson and its map (.png),
                   and one photo's answer capped at 200 km (capped.csv)
    summary.json   the figures of the run and the time of each stage

Each stage resumes from what an interrupted run left (the libraries it calls resume), so
re-running the same command finishes the job.
"""
import dataclasses
import json
import os
import pathlib
import time

import gin
import numpy as np
import pandas as pd

from geoest.data.build import build_tfrecords
from geoest.data.meta_csv import read_meta_csv
from geoest.demo import cities, data as demo_data
from geoest.errors import InputError
from geoest.geo import Partitioning, great_circle_km, read_partitionings
from geoest.geo.confidence import Confidence
from geoest.geo.distance_temperature import save_distance_temperature
from geoest.geo.distance_weights import WITHIN_WEIGHTS_FILE, WithinWeights
from geoest.geo.how_sure import how_sure_figures, how_sure_lines
from geoest.inference.batches import record_batches
from geoest.inference.calibration import load_calibration, model_fingerprint
from geoest.inference.core import HIERARCHY, Locator
from geoest.inference.evaluation import evaluate
from geoest.inference.methods import Method, load_methods
from geoest.inference.modeldir import load_geo_model, model_file
from geoest.inference.prediction import predict_images, write_geojson
from geoest.inference.report import plot_cells, report_lines
from geoest.inference.temperature_fit import calibrate_model_dir
from geoest.scene.places365 import CONCEPTS

DEFAULT_NUM_IMAGES = 4000
DEFAULT_IMAGE_SIZE = 96    # shorter side of the demo photos (px); gin/demo.gin trains on 48 px crops
DEFAULT_ISN_EPOCHS = 2
NUM_PREDICTED = 8
TRIVIAL = "trivial"
DISTANCE = "base_M_distance"          # base(M) trained with distance-aware targets
DISTANCE_TAU_KM = (1000, 300, 75)     # tau per partitioning, coarse to fine (PIGEON uses 75 km for its cells)
CAP_KM = 200
GIN_FILE = "demo.gin"
ISN_GIN_FILE = "demo_isn.gin"         # demo.gin plus the ISNs' fine-tuning (tau_S, learning rate)
SETTINGS = "demo_settings.json"


@dataclasses.dataclass
class DemoResult:
    """What `run_demo` produced: the output folder, the Table-6 summary and the checks."""
    output_dir: pathlib.Path
    summary: dict          # evaluation summary: {method: {output: {"all": summarize(...), ...}}}
    checks: dict           # {description: bool}
    seconds: dict          # stage -> wall-clock seconds
    artifacts: dict        # description -> path
    findings: list         # the paper's observations in the demo's figures, one line each


def partition_thresholds(num_train: int) -> tuple:
    """§3.1 thresholds scaled to the demo's size: (tau_min, (tau_max coarse, middle, fine)).

    MP-16's 4.7 M photos use tau_min 50 and tau_max 5,000 / 2,000 / 1,000 (Table 1); the
    demo's few thousand photos around 92 cities need about one cell per continent-region,
    per country-sized area and per city (landmark) for the coarse, middle and fine levels.
    """
    tau_max = tuple(max(3, round(num_train / k)) for k in (20, 50, 100))
    tau_min = max(1, round(tau_max[-1] / 10))
    return tau_min, tau_max


def build_partitionings(meta_csv, output_dir) -> list:
    """Builds the coarse, middle and fine partitionings (§3.1) of the photos in `meta_csv`."""

    meta = read_meta_csv(meta_csv, author=False, scene=False)   # a partitioning needs the coordinates only
    tau_min, tau_max = partition_thresholds(len(meta))
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = [output_dir / f"cells_{tau_min}_{t}.csv" for t in tau_max]
    for t, path in zip(tau_max, paths):
        if not path.exists():
            Partitioning.build(meta.lat_deg, meta.lon_deg, tau_min=tau_min, tau_max=t, name=path.stem).to_csv(path)
    return read_partitionings(paths)


def build_records(photos: demo_data.DemoDataset, output_dir, image_size: int) -> dict:
    """Writes each split of the demo photos as TFRecords; returns split -> file pattern."""

    patterns = {}
    for split in demo_data.SPLITS:
        shards = max(1, photos.num_images[split] // 1000)
        summary = build_tfrecords(photos.image_dir, photos.meta_csv[split], output_dir, num_shards=shards,
                                  shorter_side=image_size, workers=os.cpu_count(), prefix=split)
        print(f"  {split}: {summary.report()}")
        patterns[split] = str(pathlib.Path(output_dir) / f"{split}-*.tfrecord")
    return patterns


def train_model(model_dir, patterns: dict, partitionings_dir, parts, gin_params=(), seed: int = 0,
                gin_file: str = GIN_FILE):
    """Trains base(M, f*) with gin/demo.gin (or `gin_file`, which includes it) on the demo's records
    (resumes in model_dir)."""
    import keras

    from geoest.training import train
    from geoest.training.config import parse_gin

    gin.clear_config()
    bindings = [f"TRAIN_FILES = '{patterns['train']}'", f"VALIDATION_FILES = '{patterns['val']}'",
                f"PARTITIONINGS_DIR = '{partitionings_dir}'"]
    bindings += [f"{macro} = '{p.name}.csv'" for macro, p in zip(("COARSE", "MIDDLE", "FINE"), parts)]
    parse_gin([gin_file], [*bindings, *gin_params])
    keras.utils.set_random_seed(seed)  # the initial weights; gin/demo.gin fixes the input order
    if (pathlib.Path(model_dir) / "checkpoints").is_dir():
        print(f"  resuming from the checkpoints in {model_dir}", flush=True)
    try:
        train(str(model_dir), variant=[pathlib.Path(gin_file).stem])
    finally:
        gin.clear_config()
    best = json.loads((pathlib.Path(model_dir) / "best.json").read_text())
    print(f"  best on validation: epoch {best['epoch']}, f* within 25 km "
          f"{best.get('val_hierarchy_acc_25km', float('nan')):.1%}, within 750 km "
          f"{best.get('val_hierarchy_acc_750km', float('nan')):.1%}", flush=True)


def train_isns(output_dir, base_dir, patterns, partitionings_dir, parts, epochs: int, gin_params=(),
               seed: int = 0) -> dict:
    """§3.3 ISNs: base(M) fine-tuned on the photos of each concept (probability > tau_S, §4) with
    gin/demo_isn.gin."""
    dirs = {}
    for concept in CONCEPTS:
        model_dir = pathlib.Path(output_dir) / f"isn_{concept}"
        print(f"\n== ISN {concept}: fine-tuning base(M) on {concept} photos (tau_S = 0.3) ==", flush=True)
        train_model(model_dir, patterns, partitionings_dir, parts, [
            f"train.init_from = '{base_dir}'", f"train_dataset.concept = '{concept}'", f"train.epochs = {epochs}",
            *gin_params], seed=seed, gin_file=ISN_GIN_FILE)
        dirs[concept] = model_dir
    return dirs


def trivial_method(parts):
    """The trivial predictor: every photo at the mean coordinate (Class2GPS) of the largest cell."""

    largest = {p.name: np.eye(len(p))[np.argmax(p.counts)] for p in parts}   # one-hot [n_cells]

    def probabilities(batch):
        return {name: np.tile(onehot, (len(batch["id"]), 1)) for name, onehot in largest.items()}

    return Method(TRIVIAL, Locator(parts, hierarchy=False), probabilities)


def calibrate(model_dir, validation_pattern) -> list:
    """Temperatures of base(M) fitted on the validation photos (kept when already fitted for this model)."""

    fitted = load_calibration(load_geo_model(model_dir))
    if fitted is None:
        fitted = calibrate_model_dir(model_dir, lambda size: record_batches(validation_pattern, 32, size))
    return report_lines(fitted.report)


def how_sure(confidence: dict) -> list:
    """The demo's lines on how sure base(M, f*) is, from evaluate's confidence.json entry."""
    lines = []
    radius = confidence["within"]["radius"]        # R_p, the quantile of the error
    for key in ("before", "after"):
        if key in confidence:
            c = radius[key]
            lines.append(f"coverage of R_0.5 / R_0.9 {key} temperature scaling: {c['50']['coverage']:.1%} / "
                         f"{c['90']['coverage']:.1%} (W_R from the {confidence['within']['weights']}; ECE of the "
                         f"top cell's probability {confidence[key]['ece']:.3f})")
    last = confidence.get("after", confidence["before"])
    lines.append(f"within 25 km: the most confident half {last['most_confident_half']['25']:.1%}, all photos "
                 f"{last['all']['25']:.1%} (area under the accuracy-coverage curve "
                 f"{last['accuracy_coverage_area']['25']:.1%})")
    return lines


def how_sure_distance(model_dir, patterns: dict, train_meta_csv) -> dict:
    """How sure base(M, f*) is as P(error <= R) (`geoest.geo.how_sure.how_sure_figures`): W_R of the fine
    cells from the training coordinates (written into model_dir), the distance temperature fitted on
    every validation photo, the figures measured on the test photos."""
    methods, image_size = load_methods({"base_M": model_dir})
    method = methods[0]
    fine = method.locator.partitionings[-1]
    path = pathlib.Path(model_dir) / WITHIN_WEIGHTS_FILE
    if path.exists():
        weights = WithinWeights.load(path, fine)
    else:
        meta = read_meta_csv(train_meta_csv, author=False, scene=False)
        weights = WithinWeights.build(fine, meta.lat_deg, meta.lon_deg)
        weights.save(path)

    def photos(pattern) -> dict:
        raw, tempered, lat, lon = [], [], [], []
        for batch in record_batches(pattern, 32, image_size):
            d = method.distributions(method.probabilities(batch))
            raw.append(d["before"])
            tempered.append(d.get("after", d["before"]))
            lat.append(batch["lat"])
            lon.append(batch["lon"])
        raw, tempered = np.concatenate(raw).astype(np.float64), np.concatenate(tempered).astype(np.float64)
        lat, lon = np.concatenate(lat).astype(np.float64), np.concatenate(lon).astype(np.float64)
        keep = np.isfinite(raw).all(axis=1) & np.isfinite(tempered).all(axis=1)   # NaN: left out
        predicted = np.argmax(raw[keep], axis=1)              # the answer: the raw model's cell
        points = weights.points[predicted]
        return {"raw": raw[keep], "probs": tempered[keep], "predicted": predicted,
                "dist_km": great_circle_km(points[:, 0], points[:, 1], lat[keep], lon[keep]),
                "in_cell": fine.assign(lat[keep], lon[keep]) >= 0}

    figures = how_sure_figures(weights, photos(patterns["test"]), photos(patterns["val"]))
    save_distance_temperature(model_dir, figures["distance_temperature"], weights,
                              model_fingerprint(model_file(model_dir)))
    return figures


def evaluate_models(output_dir, test_pattern, num_test: int, model_dir, isn_dirs=None, distance_dir=None):
    """Table 6 on the test split for base(M), the ISNs (when given) and the trivial predictor."""

    model_dirs = {"base_M": model_dir, **({DISTANCE: distance_dir} if distance_dir else {})}
    methods, image_size = load_methods(model_dirs, isn_dirs)
    methods.append(trivial_method(methods[0].locator.partitionings))
    batches = record_batches(test_pattern, 32, image_size)
    return evaluate(methods, batches, output_dir, total=num_test)


def predict_photos(output_dir, photos: demo_data.DemoDataset, model_dir, count: int = NUM_PREDICTED) -> dict:
    """Locates a few test photos, one per continent first; writes predictions.csv and .geojson."""

    from geoest.data.pipeline import image_dataset

    meta = read_meta_csv(photos.meta_csv["test"], author=False, scene=False)
    truth = photos.photos["test"]
    # One photo per continent first, then the next ones in test order.
    continent = cities.CONTINENT[truth.city]
    firsts = [int(np.flatnonzero(continent == c)[0]) for c in np.unique(continent)]
    rows = sorted((firsts + [r for r in range(len(meta)) if r not in firsts])[:count])
    paths = [str(photos.image_dir / meta.ids[r]) for r in rows]
    methods, image_size = load_methods({"base_M": model_dir})
    method = methods[0]
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path, geojson_path = output_dir / "predictions.csv", output_dir / "predictions.geojson"
    batches = lambda todo: image_dataset(todo, 16, image_size=image_size).as_numpy_iterator()   # noqa: E731
    parts = method.locator.partitionings
    sure = Confidence(parts, method.locator.hierarchy.parents)
    weights, temperature = method.within_weights, method.distance_temperature    # written by how_sure_distance
    if weights is None:
        weights = WithinWeights.from_means(parts[-1])
    predict_images(method, paths, csv_path, batches, confidence=sure, geojson=geojson_path, within_weights=weights,
                   distance_temperature=temperature)
    write_geojson(csv_path, method.locator, geojson_path)
    capped_path = output_dir / "capped.csv"       # the first photo, no answer finer than CAP_KM
    predict_images(method, paths[:1], capped_path, batches, within_weights=weights, distance_temperature=temperature,
                   confidence=Confidence(parts, method.locator.hierarchy.parents, max_resolution_km=CAP_KM))
    capped = pd.read_csv(capped_path, dtype={"cell": str}).iloc[0]
    predicted = pd.read_csv(csv_path, dtype={"cell": str}).set_index("image")
    lines = []
    for r, path in zip(rows, paths):
        if path not in predicted.index:
            continue
        got = predicted.loc[path]
        dist = float(great_circle_km(meta.lat_deg[r], meta.lon_deg[r], got["lat"], got["lon"]))
        city = truth.city[r]
        region = cities.REGIONS[cities.REGION[city]]
        where = f"in {cities.NAMES[city]}" if truth.at_city[r] else f"outside the cities, {region}"
        lines.append(f"  {meta.ids[r]}  {CONCEPTS[truth.scene[r]]:7s} taken at ({meta.lat_deg[r]:7.2f}, "
                     f"{meta.lon_deg[r]:8.2f}) {where}; predicted ({got['lat']:7.2f}, {got['lon']:8.2f}): "
                     f"{dist:,.0f} km off; p = {got['probability']:.2f}"
                     + (f", P(error <= 25 km) {float(got['p_within_25km']):.2f}" if "p_within_25km" in got else "")
                     + f", R_0.5 {got['radius_km_50']:,.0f} km, "
                     f"R_0.9 {got['radius_km_90']:,.0f} km")
    first = predicted.loc[paths[0]]
    lines.append(f"  capped at {CAP_KM} km, {meta.ids[rows[0]]} becomes S2 area {capped['cell']} around "
                 f"({capped['lat']:.2f}, {capped['lon']:.2f}) with p = {capped['probability']:.2f}, R_0.5 "
                 f"{capped['radius_km_50']:,.0f} km (uncapped: cell {first['cell']} at ({first['lat']:.2f}, "
                 f"{first['lon']:.2f}), R_0.5 {first['radius_km_50']:,.0f} km)")
    return {"csv": csv_path, "geojson": geojson_path, "capped": capped_path, "lines": lines}


def check_claims(summary: dict, fine: str) -> dict:
    """The demo's acceptance checks: base(M, f*) beats the trivial predictor clearly at 25 and 750 km,
    and f* is at least as good as the finest partitioning alone at 25 km (§3.4, Table 3)."""
    def acc(method, output, km):
        return summary[method][output]["all"]["accuracy"][str(km)]

    trivial = {km: max(acc(TRIVIAL, o, km) for o in summary[TRIVIAL] if o != HIERARCHY) for km in (25, 750)}
    return {
        f"f* beats the trivial predictor at 25 km ({acc('base_M', HIERARCHY, 25):.1%} vs {trivial[25]:.1%})":
            acc("base_M", HIERARCHY, 25) >= trivial[25] + 0.05,
        f"f* beats the trivial predictor at 750 km ({acc('base_M', HIERARCHY, 750):.1%} vs {trivial[750]:.1%})":
            acc("base_M", HIERARCHY, 750) >= trivial[750] + 0.05,
        f"f* >= finest partitioning alone at 25 km ({acc('base_M', HIERARCHY, 25):.1%} vs "
        f"{acc('base_M', fine, 25):.1%})": acc("base_M", HIERARCHY, 25) >= acc("base_M", fine, 25),
    }


def findings(summary: dict, parts) -> list:
    """The paper's observations as they show in the demo's figures (Table 3, Table 6, §3.3-3.4)."""

    def acc(method, output, km):
        return f"{summary[method][output]['all']['accuracy'][str(km)]:.1%}"

    names = [p.name for p in parts]
    lines = [
        "finer cells locate cities (§3.1, Table 3): within 25 km, coarse / middle / fine = "
        + " / ".join(acc("base_M", n, 25) for n in names),
        "coarser cells are surer of the country: within 750 km, coarse / middle / fine = "
        + " / ".join(acc("base_M", n, 750) for n in names),
        f"the hierarchy f* (§3.4) refines the fine cells with the coarse ones: {acc('base_M', HIERARCHY, 25)} "
        f"within 25 km, {acc('base_M', HIERARCHY, 750)} within 750 km",
    ]
    if "ISNs" in summary:
        lines.append(f"scene-specific ISNs (§3.3): f* {acc('ISNs', HIERARCHY, 25)} within 25 km, "
                     f"{acc('ISNs', HIERARCHY, 750)} within 750 km")
    if DISTANCE in summary:
        lines.append(f"distance-aware targets (beyond the paper): f* {acc(DISTANCE, HIERARCHY, 25)} within 25 km, "
                     f"{acc(DISTANCE, HIERARCHY, 750)} within 750 km (one-hot: {acc('base_M', HIERARCHY, 25)}, "
                     f"{acc('base_M', HIERARCHY, 750)})")
    concepts = [c for c in CONCEPTS if c in summary["base_M"][HIERARCHY]]
    if concepts:
        lines.append("per scene (Table 4, Fig. 5), f* within 25 km: " + ", ".join(
            f"{c} {summary['base_M'][HIERARCHY][c]['accuracy']['25']:.1%}" for c in concepts))
    return lines


def _check_settings(path: pathlib.Path, settings: dict) -> None:
    """Resuming is only right for the same settings: records them, or refuses other ones."""
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != settings:
            raise InputError(f"{path.parent} holds a demo run with other settings {stored} (from {path}); "
                             f"this run asks for {settings}. Choose another --output_dir or delete that one.")
        print(f"resuming the demo in {path.parent}", flush=True)
        return
    path.write_text(json.dumps(settings) + "\n")


def run_demo(output_dir, *, num_images: int = DEFAULT_NUM_IMAGES, seed: int = 0,
             image_size: int = DEFAULT_IMAGE_SIZE, isns: bool = True,
             isn_epochs: int = DEFAULT_ISN_EPOCHS, gin_params=(),
             num_predicted: int = NUM_PREDICTED, distance_targets: bool = True) -> DemoResult:
    """Generates the demo data, builds partitionings and records, trains, evaluates and predicts.

    Args:
      output_dir: the one folder for every artifact (see the module docstring).
      num_images: photos over all splits (75 % train, 10 % validation, 15 % test).
      seed: the seed of the photo collection.
      image_size: shorter side of the photos (px).
      isns: also fine-tune and evaluate the three ISNs.
      isn_epochs: epochs of each ISN's fine-tuning.
      gin_params: extra gin bindings for training, after gin/demo.gin (e.g. "train.epochs = 2").
      num_predicted: test photos to locate into predictions.geojson.
      distance_targets: also train base(M) with distance-aware targets and evaluate it beside.
    Returns:
      DemoResult with the evaluation summary, the checks and where each artifact is.
    """
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(output_dir / SETTINGS, {
        "num_images": num_images, "seed": seed, "image_size": image_size, "isns": isns,
        "isn_epochs": isn_epochs, "gin_params": list(gin_params), "distance_targets": distance_targets})
    seconds = {}

    def stage(name, title):
        print(f"\n== {title} ==", flush=True)
        seconds[name] = time.time()

    def done(name):
        seconds[name] = round(time.time() - seconds[name], 1)

    stage("photos", f"1/6 photos: {num_images} synthetic photos around {len(cities.CITIES)} cities")
    photos = demo_data.generate(output_dir / "photos", num_images=num_images, seed=seed, image_size=image_size)
    done("photos")

    stage("partitionings", "2/6 partitionings (§3.1): coarse, middle and fine S2 cells of the training photos")
    parts = build_partitionings(photos.meta_csv["train"], output_dir / "partitionings")
    for label, p in zip(("coarse", "middle", "fine"), parts):
        print(f"  {label:6s} {p.name}: {len(p)} cells")
    cells_png = output_dir / "partitionings" / "cells.png"
    if not cells_png.exists():
        plot_cells(parts[-1], cells_png)
    done("partitionings")

    stage("records", "3/6 TFRecords")
    patterns = build_records(photos, output_dir / "tfrecords", image_size)
    done("records")

    stage("train", "4/6 training base(M, f*) with gin/demo.gin")
    model_dir = output_dir / "model"
    train_model(model_dir, patterns, output_dir / "partitionings", parts, gin_params, seed=seed)
    print("  temperatures fitted on the validation photos (beyond the paper):")
    print("\n".join(f"    {line}" for line in calibrate(model_dir, patterns["val"])), flush=True)
    distance_dir = None
    if distance_targets:
        distance_dir = output_dir / "model_distance"
        print(f"\n== base(M, f*) with distance-aware targets, tau {' / '.join(map(str, DISTANCE_TAU_KM))} km "
              "(beyond the paper) ==", flush=True)
        train_model(distance_dir, patterns, output_dir / "partitionings", parts,
                    [*gin_params, f"make_losses.distance_tau_km = {list(DISTANCE_TAU_KM)}"], seed=seed)
    isn_dirs = None
    if isns:
        isn_dirs = train_isns(output_dir, model_dir, patterns, output_dir / "partitionings", parts,
                              isn_epochs, gin_params, seed=seed)
    done("train")

    stage("evaluate", "5/6 evaluation on the test photos (Table 6; trivial = every photo at the largest cell)")
    # W_R and the distance temperature first: evaluate (and a re-run of it) then reads the same ones
    within_figures = how_sure_distance(model_dir, patterns, photos.meta_csv["train"])
    summary = evaluate_models(output_dir / "evaluation", patterns["test"], photos.num_images["test"],
                              model_dir, isn_dirs, distance_dir)
    sure = how_sure(json.loads((output_dir / "evaluation" / "confidence.json").read_text())["base_M"])
    print("base(M, f*), how sure (beyond the paper):\n" + "\n".join(f"  {line}" for line in sure))
    within_lines = how_sure_lines(within_figures)
    print("base(M, f*), how sure as P(error <= R) (beyond the paper):\n"
          + "\n".join(f"  {line}" for line in within_lines), flush=True)
    done("evaluate")

    stage("predict", f"6/6 locating {num_predicted} test photos")
    predicted = predict_photos(output_dir / "predictions", photos, model_dir, num_predicted)
    print("\n".join(predicted["lines"]))
    done("predict")

    checks = check_claims(summary, parts[-1].name)
    artifacts = {
        "photos and Im2GPS-format meta CSVs": photos.root,
        "partitionings (coarse, middle, fine) and a map of the fine cells": output_dir / "partitionings",
        "TFRecords": output_dir / "tfrecords",
        "trained base(M, f*) model (best.keras), checkpoints, logs, operative_config.gin": model_dir,
        **({f"ISN {c}": d for c, d in isn_dirs.items()} if isn_dirs else {}),
        **({"base(M, f*) with distance-aware targets": distance_dir} if distance_dir else {}),
        "Table 6 (table6.txt), accuracy plot (accuracy.png), results CSVs": output_dir / "evaluation",
        "reliability diagram of base(M, f*), before and after temperature scaling":
            output_dir / "evaluation" / "base_M" / "reliability.png",
        "accuracy-coverage curve of base(M, f*)": output_dir / "evaluation" / "base_M" / "accuracy_coverage.png",
        "predictions (CSV) and their map (GeoJSON, PNG)": predicted["geojson"],
        f"one prediction capped at {CAP_KM} km": predicted["capped"],
    }
    result = DemoResult(output_dir, summary, checks, seconds, artifacts,
                        findings(summary, parts) + sure + within_lines)
    (output_dir / "summary.json").write_text(json.dumps({
        "num_images": photos.num_images, "seed": seed, "partitionings": {p.name: len(p) for p in parts},
        "seconds": seconds, "checks": checks, "findings": result.findings, "evaluation": summary,
        "how_sure": within_figures, "artifacts": {k: str(v) for k, v in artifacts.items()}}, indent=1) + "\n")
    return result


def closing_summary(result: DemoResult) -> str:
    """The text the demo ends with: checks, stage times and where each artifact is."""
    lines = ["", "== summary =="]
    lines += [f"  {line}" for line in result.findings]
    lines += [f"  [{'ok' if ok else 'FAILED'}] {text}" for text, ok in result.checks.items()]
    total = sum(result.seconds.values())
    lines.append("  time: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
                 + f"; total {total / 60:.1f} min on {os.cpu_count()} CPU cores")
    lines.append("  artifacts:")
    lines += [f"    {path}  -  {what}" for what, path in result.artifacts.items()]
    lines.append(f"    {result.output_dir / 'summary.json'}  -  all figures and stage times")
    return "\n".join(lines)


__all__ = ["DemoResult", "closing_summary", "findings", "partition_thresholds", "run_demo"]
