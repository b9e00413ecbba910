"""Locating your own photos: coordinates, cells and probabilities per image, and a GeoJSON map.

The predictions CSV has one row per readable image:
  image, lat, lon, cell, probability, top_cells, top_probabilities     (the main output: f* when the
                                                                      model has 2+ partitionings)
  <output>_lat, <output>_lon, <output>_cell, <output>_probability     (every partitioning and f*)
`top_cells` / `top_probabilities` list the k best cells, space-separated. Re-running the same
command appends only the images not yet in the CSV (resume). Unreadable files are reported and
skipped. `<predictions CSV>.json` records the model and options that wrote the CSV (and the map):
rows of another model are never appended, and a file predict did not write for the same model is
never replaced, unless `overwrite`.
"""
import csv
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.files import claim_outputs
from geoest.inference import geojson


def _columns(outputs):
    return (["image", "lat", "lon", "cell", "probability", "top_cells", "top_probabilities"]
            + [f"{o}_{c}" for o in outputs for c in ("lat", "lon", "cell", "probability")])


def _rows(ids, located, locator):
    main = located[locator.main]
    tokens = {name: locator.partitioning(name).tokens for name in located}
    for i, image in enumerate(ids):
        row = {"image": image, "lat": f"{main.lat_deg[i]:.6f}", "lon": f"{main.lon_deg[i]:.6f}",
               "cell": tokens[locator.main][main.classes[i]], "probability": f"{main.probs[i]:.6g}",
               "top_cells": " ".join(tokens[locator.main][c] for c in main.top_classes[i]),
               "top_probabilities": " ".join(f"{p:.6g}" for p in main.top_probs[i])}
        for name, result in located.items():
            row.update({f"{name}_lat": f"{result.lat_deg[i]:.6f}", f"{name}_lon": f"{result.lon_deg[i]:.6f}",
                        f"{name}_cell": tokens[name][result.classes[i]],
                        f"{name}_probability": f"{result.probs[i]:.6g}"})
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


def manifest_path(output_csv) -> pathlib.Path:
    """The JSON beside a predictions CSV naming the model and options that wrote it."""
    output_csv = pathlib.Path(output_csv)
    return output_csv.with_name(output_csv.name + ".json")


def predict_images(method, paths, output_csv, batches, *, top_k: int = 5, geojson=None,
                   overwrite: bool = False) -> dict:
    """Run a method (`geoest.inference.evaluation.Method`) over images and write the CSV.

    Args:
      method: the model (or ISNs routed by a scene model) with its Locator.
      paths: list of image paths (str), the `image` column.
      output_csv: predictions file; rows already in it are kept and their images skipped.
      batches: callable(paths) -> iterable of dicts {"crops": [B, 3, S, S, 3], "id": [B] path}
        holding the readable images only.
      top_k: cells listed per image.
      geojson: the map this run will draw with `write_geojson`, claimed with the CSV.
      overwrite: replace a CSV (and map) written for another model or not by predict.
    Returns:
      {"predicted": n new rows, "skipped_done": n, "unreadable": [paths]}.
    Raises:
      InputError: the CSV or map exists and this command does not own it for the same model.
    """
    from tqdm import tqdm

    output_csv = pathlib.Path(output_csv)
    columns = _columns(method.locator.names)
    resume = claim_outputs(manifest_path(output_csv), {"method": method.source, "top_k": top_k},
                           [output_csv] + ([pathlib.Path(geojson)] if geojson else []), overwrite=overwrite,
                           command="geoest.predict")
    done = _done(output_csv, columns) if resume else set()
    todo = [p for p in paths if p not in done]
    seen = set()
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
                writer.writerows(_rows(ids, method.locator.locate(probs, top_k), method.locator))
                f.flush()
                seen.update(ids)
                progress.update(len(ids))
    unreadable = [p for p in todo if p not in seen]
    return {"predicted": len(seen), "skipped_done": len(paths) - len(todo), "unreadable": unreadable}


def write_geojson(output_csv, locator, path) -> int:
    """GeoJSON of a predictions CSV: a point per image and the polygons of its top cells.

    Returns the number of images drawn.
    """
    partitioning = locator.partitioning(locator.main)
    classes = {token: k for k, token in enumerate(partitioning.tokens)}
    features, cells = [], []
    with open(output_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        features.append(geojson.point_feature(float(row["lat"]), float(row["lon"]), {
            "image": row["image"], "cell": row["cell"], "probability": float(row["probability"]),
            "output": locator.main}))
        for rank, (token, p) in enumerate(zip(row["top_cells"].split(), row["top_probabilities"].split())):
            cells.append((classes[token], {"image": row["image"], "rank": rank + 1, "probability": float(p)}))
    if cells:
        features += geojson.cell_features(partitioning, [c for c, _ in cells], [props for _, props in cells])
    geojson.write(path, features)
    return len(rows)
