"""Locating your own photos: coordinates, cells and probabilities per image, and a GeoJSON map.

The predictions CSV has one row per readable image:
  image, lat, lon, cell, probability, top_cells, top_probabilities     (the main output: f* when the
                                                                      model has 2+ partitionings)
  <output>_lat, <output>_lon, <output>_cell, <output>_probability     (every partitioning and f*)
`top_cells` / `top_probabilities` list the k best cells, space-separated. Every probability is the
calibrated one when the model has temperatures (the cells are the model's answer either way); the
uncalibrated ones only when asked (`raw_probabilities`: raw_probability, raw_top_probabilities,
<output>_raw_probability). Re-running the same
command appends only the images not yet in the CSV (resume). Unreadable files are reported and
skipped, as are photos whose probabilities hold NaN. `<predictions CSV>.json` records the model
and options that wrote the CSV (and the map): rows of another model or other options are never
appended, and a file predict did not write for them is never replaced, unless `overwrite`.

With a `geoest.geo.confidence.Confidence` (how sure a guess is), `probability` is the main
output's probability after temperature scaling (when the model has temperatures), and every row
also holds
  region_cells_<p>                     per mass p (50, 90): the smallest set of cells holding p of
                                       the probability (S2 tokens)
  level, answer_lat, answer_lon,       back-off: the finest level (fine, middle, coarse) whose
  answer_cell, answer_probability      predicted cell holds at least --min_confidence, or "none"
With distance weights W_R of the fine cells (`geoest.geo.distance_weights.WithinWeights`: the model dir's
within_weights.npz, or the cell-mean approximation), every row also holds
  radius_km_<p>                        R_p, the smallest radius around the fine answer with
                                       P(error <= R_p) >= p (never below the cap)
  p_within_<R>km                       P(error <= R) for R = 1 / 25 / 200 / 750 / 2500 km, from the
                                       calibrated distribution (empty below the resolution cap)
With a resolution cap, the row holds only what the cap allows: image, lat, lon, cell and
probability of the capped area, the regions (of capped areas) and the back-off answer.
"""
import csv
import pathlib

import numpy as np
from tqdm import tqdm

from geoest.errors import InputError
from geoest.files import atomic_path, claim_outputs, manifest_path
from geoest.geo.confidence import finite_rows
from geoest.geo.distance import THRESHOLDS_KM
from geoest.geo.distance_temperature import sharpen
from geoest.geo.distance_weights import within_key
from geoest.geo.regions import mass_key
from geoest.inference import geojson
from geoest.inference.report import plot_map


ANSWER_COLUMNS = ("level", "answer_lat", "answer_lon", "answer_cell", "answer_probability")


def _columns(outputs, confidence=None, weights=None, raw_probabilities: bool = False):
    if confidence is not None and confidence.cap is not None:
        base = ["image", "lat", "lon", "cell", "probability"]
    else:
        base = (["image", "lat", "lon", "cell", "probability", "top_cells", "top_probabilities"]
                + [f"{o}_{c}" for o in outputs for c in ("lat", "lon", "cell", "probability")])
        if raw_probabilities:
            base += ["raw_probability", "raw_top_probabilities"] + [f"{o}_raw_probability" for o in outputs]
    if confidence is None:
        return base
    region = ("region_cells", "radius_km") if weights is not None else ("region_cells",)
    within_columns = [within_key(r) for r in THRESHOLDS_KM] if weights is not None else []
    return base + [f"{c}_{mass_key(p)}" for p in confidence.masses for c in region] \
        + within_columns + list(ANSWER_COLUMNS)


def _within_rows(rows, weights, probs_fine, predicted, confidence):
    """Adds P(error <= R) per paper threshold and the quantile radius R_p (radius_km_<p>)."""
    cap = None if confidence.cap is None else float(confidence.cap.max_resolution_km)
    p_within = weights.within(probs_fine, predicted, THRESHOLDS_KM, max_resolution_km=cap)
    radii = weights.radius(probs_fine, predicted, confidence.masses, max_resolution_km=cap)
    for i, row in enumerate(rows):
        for k, r in enumerate(THRESHOLDS_KM):
            row[within_key(r)] = f"{p_within[i, k]:.6g}" if np.isfinite(p_within[i, k]) else ""
        for j, p in enumerate(confidence.masses):
            row[f"radius_km_{mass_key(p)}"] = f"{radii[i, j]:.3f}"
        yield row


def _confidence_rows(rows, answer, confidence):
    """Adds the confidence columns to rows (and, capped, replaces the answer by the capped one)."""
    for i, row in enumerate(rows):
        if confidence.cap is not None:
            row = {"image": row["image"], "lat": f"{answer['lat'][i]:.6f}", "lon": f"{answer['lon'][i]:.6f}",
                   "cell": answer["cell"][i]}
        row["probability"] = f"{answer['probability'][i]:.6g}"     # with temperatures: calibrated
        for p in confidence.masses:
            key = mass_key(p)
            row[f"region_cells_{key}"] = " ".join(answer[f"region_{key}"][i])
        answered = answer["level"][i] != "none"
        row.update({"level": answer["level"][i],
                    "answer_lat": f"{answer['answer_lat'][i]:.6f}" if answered else "",
                    "answer_lon": f"{answer['answer_lon'][i]:.6f}" if answered else "",
                    "answer_cell": answer["answer_cell"][i],
                    "answer_probability": f"{answer['answer_probability'][i]:.6g}" if answered else ""})
        yield row


def _rows(ids, located, locator, calibrated=None, raw_probabilities: bool = False):
    """Rows of the answers `located` (the raw model's, §3.4); every probability shown is the one of
    `calibrated` (output -> [B, n] with temperatures; None: the model's own) at the answered cells, and
    with `raw_probabilities` the model's own beside it."""
    main = located[locator.main]
    tokens = {name: locator.partitioning(name).tokens for name in located}

    def shown(name, classes):      # [B, ...] probabilities of the given classes
        if calibrated is None:
            return None
        probs = np.asarray(calibrated[name])
        return np.take_along_axis(probs, classes.reshape(len(probs), -1), axis=-1).reshape(classes.shape)

    probability = {name: shown(name, result.classes) for name, result in located.items()}
    probability = {name: result.probs if probability[name] is None else probability[name]
                   for name, result in located.items()}
    top = shown(locator.main, main.top_classes)
    top = main.top_probs if top is None else top
    for i, image in enumerate(ids):
        row = {"image": image, "lat": f"{main.lat_deg[i]:.6f}", "lon": f"{main.lon_deg[i]:.6f}",
               "cell": tokens[locator.main][main.classes[i]], "probability": f"{probability[locator.main][i]:.6g}",
               "top_cells": " ".join(tokens[locator.main][c] for c in main.top_classes[i]),
               "top_probabilities": " ".join(f"{p:.6g}" for p in top[i])}
        for name, result in located.items():
            row.update({f"{name}_lat": f"{result.lat_deg[i]:.6f}", f"{name}_lon": f"{result.lon_deg[i]:.6f}",
                        f"{name}_cell": tokens[name][result.classes[i]],
                        f"{name}_probability": f"{probability[name][i]:.6g}"})
        if raw_probabilities:
            row.update({"raw_probability": f"{main.probs[i]:.6g}",
                        "raw_top_probabilities": " ".join(f"{p:.6g}" for p in main.top_probs[i])})
            row.update({f"{name}_raw_probability": f"{result.probs[i]:.6g}" for name, result in located.items()})
        yield row


def _done(output_csv: pathlib.Path, columns) -> set:
    if not output_csv.exists() or output_csv.stat().st_size == 0:
        return set()
    with open(output_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != columns:
            raise InputError(f"{output_csv} exists with other columns (another model?); "
                             "choose a new --output or delete it")
        return {row["image"] for row in reader}


def predict_images(method, paths, output_csv, batches, *, top_k: int = 5, confidence=None,
                   geojson=None, overwrite: bool = False, within_weights=None,
                   distance_temperature: float | None = None, raw_probabilities: bool = False) -> dict:
    """Run a method (`geoest.inference.methods.Method`) over images and write the CSV.

    Args:
      method: the model (or ISNs routed by a scene model) with its Locator.
      paths: list of image paths (str), the `image` column.
      output_csv: predictions file; rows already in it are kept and their images skipped.
      batches: callable(paths) -> iterable of dicts {"crops": [B, 3, S, S, 3], "id": [B] path}
        holding the readable images only.
      top_k: cells listed per image.
      confidence: a `geoest.geo.confidence.Confidence` of the method's cells for regions, back-off
        and the cap (computed on the calibrated distribution when the method has temperatures).
      geojson: the map this run will draw with `write_geojson` (and its PNG), claimed with the CSV.
      overwrite: replace a CSV (and map) written for another model or options, or not by predict.
      within_weights: `geoest.geo.distance_weights.WithinWeights` of the fine cells (with `confidence`):
        P(error <= R) columns and the quantile R_p.
      distance_temperature: the extra temperature on f* of the distance events
        (`geoest.geo.distance_temperature.load_distance_temperature`), applied before P(error <= R) and R_p.
      raw_probabilities: also list the model's uncalibrated probabilities (raw_probability,
        raw_top_probabilities, <output>_raw_probability); otherwise every probability in a row is the
        calibrated one (the model's own when it has no temperatures).
    Returns:
      {"predicted": n new rows, "skipped_done": n, "unreadable": [paths], "nan": [paths whose
      probabilities hold NaN, skipped]}.
    Raises:
      InputError: the CSV or map exists and this command does not own it for the same model.
    """
    output_csv = pathlib.Path(output_csv)
    if within_weights is not None and confidence is None:
        raise InputError("P(error <= R) needs the confidence settings (masses, cap) beside the weights")
    columns = _columns(method.locator.names, confidence, within_weights, raw_probabilities)
    settings = None if confidence is None else {
        "masses": [float(m) for m in confidence.masses], "min_confidence": float(confidence.min_confidence),
        "max_resolution_km": None if confidence.cap is None else float(confidence.cap.max_resolution_km)}
    if within_weights is not None:
        settings["within_weights"] = within_weights.digest
        settings["distance_temperature"] = distance_temperature
    maps = [pathlib.Path(geojson), pathlib.Path(geojson).with_suffix(".png")] if geojson else []
    options = {"method": method.source, "top_k": top_k, "confidence": settings}
    if raw_probabilities:
        options["raw_probabilities"] = True
    resume = claim_outputs(manifest_path(output_csv), options,
                           [output_csv, *maps], overwrite=overwrite, command="geoest.predict")
    done = _done(output_csv, columns) if resume else set()
    todo = [p for p in paths if p not in done]
    seen, nan = set(), []
    new_file = not done
    with open(output_csv, "a" if done else "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new_file:
            writer.writeheader()
        with tqdm(total=len(todo), unit="img", desc="predict") as progress:
            for batch in (batches(todo) if todo else ()):
                ids = [i.decode() if isinstance(i, bytes) else str(i) for i in np.asarray(batch["id"]).ravel()]
                routed = method.concepts(batch) if method.concepts else None
                probs = method.probabilities(batch, routed) if routed is not None else method.probabilities(batch)
                finite = np.all([finite_rows(v) for v in probs.values()], axis=0)
                nan += [i for i, ok in zip(ids, finite) if not ok]
                seen.update(ids)
                ids = [i for i, ok in zip(ids, finite) if ok]
                probs = {k: np.asarray(v)[finite] for k, v in probs.items()}
                if not ids:
                    progress.update(len(finite))
                    continue
                shown = None if method.calibration is None else method.calibration.cell_probabilities(method.locator, probs)
                rows = _rows(ids, method.locator.locate(method.raw(probs), top_k), method.locator, shown,
                             raw_probabilities)
                if confidence is not None:
                    cells = method.distributions(probs)
                    calibrated, predicted = cells.get("after", cells["before"]), np.argmax(cells["before"], axis=-1)
                    answer = confidence(calibrated, predicted)
                    rows = _confidence_rows(rows, answer, confidence)
                    if within_weights is not None:
                        if distance_temperature is not None:
                            calibrated = sharpen(calibrated, distance_temperature)
                        rows = _within_rows(list(rows), within_weights, calibrated, predicted, confidence)
                writer.writerows(rows)
                f.flush()
                progress.update(len(finite))
    unreadable = [p for p in todo if p not in seen]
    return {"predicted": len(seen) - len(nan), "skipped_done": len(paths) - len(todo), "unreadable": unreadable,
            "nan": nan}


def write_geojson(output_csv, locator, path, png: bool = True) -> int:
    """GeoJSON of a predictions CSV: a point per image and the polygons of its top cells, and a
    PNG map of the same beside it (path with .png).

    With confidence columns, the point carries the radii ("radius_km_50", ...: circles around it)
    and the back-off answer, and the cells of its largest confidence region are drawn too
    (property "region": the mass p). A capped CSV has no top cells: it draws only capped areas.
    Returns the number of images drawn.
    """
    partitioning = locator.partitioning(locator.main)
    classes = {token: k for k, token in enumerate(partitioning.tokens)}
    features, cells, regions = [], [], []
    with open(output_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        region_keys = sorted((k[len("region_cells_"):] for k in row if k.startswith("region_cells_")), key=float)
        props = {"image": row["image"], "cell": row["cell"], "probability": float(row["probability"]),
                 "output": locator.main}
        props.update({f"radius_km_{k}": float(row[f"radius_km_{k}"]) for k in region_keys if f"radius_km_{k}" in row})
        props.update({c: row[c] for c in ANSWER_COLUMNS if c in row})
        features.append(geojson.point_feature(float(row["lat"]), float(row["lon"]), props))
        if region_keys:
            key = region_keys[-1]
            regions += [(token, {"image": row["image"], "region": float(key) / 100, "rank": rank + 1})
                        for rank, token in enumerate(row[f"region_cells_{key}"].split())]
        top = zip(row.get("top_cells", "").split(), row.get("top_probabilities", "").split())   # none when capped
        for rank, (token, p) in enumerate(top):
            cells.append((classes[token], {"image": row["image"], "rank": rank + 1, "probability": float(p)}))
    if cells:
        features += geojson.cell_features(partitioning, [c for c, _ in cells], [props for _, props in cells])
    if regions:
        features += geojson.token_features([t for t, _ in regions], [props for _, props in regions])
    geojson.write(path, features)
    if png:
        with atomic_path(pathlib.Path(path).with_suffix(".png")) as tmp:
            plot_map(features, tmp, title=f"{len(rows)} photos located")
    return len(rows)
