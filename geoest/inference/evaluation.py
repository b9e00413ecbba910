"""§4 evaluation: great-circle accuracy of models and ISN ensembles on a test set.

One pass over the test images runs every method (a model, or the ISNs routed by scene) and
writes, per method and output (each partitioning and the hierarchy f*):
  <output_dir>/<method>/results_<output>.csv   the published results format
                                               (geoest.geo.scoring.write_results_csv)
  <output_dir>/summary.json                    {method: {output: {"all": summarize(...),
                                               "indoor": ..., "natural": ..., "urban": ...}}}
  <output_dir>/table6.txt                      the table laid out like Table 6
  <output_dir>/accuracy.png                    accuracy against distance
  <output_dir>/<method>/reliability.png        reliability of the top cell's probability (before and
                                               after temperature scaling, when the model has one)
  <output_dir>/<method>/accuracy_coverage.png  accuracy within each R against the fraction of photos
                                               answered, most confident first by P(error <= R), beside
                                               random orders and the oracle
  <output_dir>/confidence.json                 {method: {"before": ..., "after": ..., "skipped_nan": [ids]}}:
                                               the cell sets' coverage, ECE, accuracy-coverage areas and the
                                               accuracy of the most confident half, before and (with
                                               temperatures) after calibration (`calibration.confidence_summary`)
                                               of the top cell's probability; and "within"
                                               (`geoest.geo.within.evaluation_figures`, W_R from the model
                                               dir, else the cell-mean approximation: "weights"): ECE of
                                               P(error <= R) per R, R_p radius and cell-set coverage, the
                                               share of photos in no cell, ranking curves against random
                                               orders and the oracle, back-off per level
Photos whose probabilities hold NaN are reported and left out of every score.
Per-scene rows (Table 4, Figure 5) group images by the S3 label of the test data (its S3_Label,
else the argmax of its scene probabilities) when it has one. A model with a scene head (MTN, §3.3)
also gets its scene top-1 accuracy at its level against the test data's labels
(summary.json: <method>/scene_accuracy). An interrupted run resumes from
<output_dir>/evaluate_partial.npz. <output_dir>/evaluate.json records the test set and models the
files there were written for: a run on another test set or other models is refused rather than
mixed in, and files evaluate did not write are never replaced (unless `overwrite`). Every file is
written under a temporary name and renamed.
"""
import dataclasses
import json
import logging
import os
import pathlib
from typing import Callable

import numpy as np

from geoest import interrupt
from geoest.errors import InputError
from geoest.files import (OUTSIDE_LINK, atomic_path, claim_outputs, digest, file_identity, link_leaves, write_text,
                          writing)
from geoest.geo import within
from geoest.heads import SCENE_HEAD, output_sizes
from geoest.inference.core import HIERARCHY, Locator, crop_probabilities
from geoest.inference.isn import SCENE_WIDTHS, IsnEnsemble, check_concepts
from geoest.inference.report import plot_accuracy, plot_ranking_curves, table6
from geoest.scene.places365 import CONCEPTS, scene_label

PARTIAL = "evaluate_partial.npz"
MANIFEST = "evaluate.json"
MISSING = "missing file"
UNDECODABLE = "JPEG data that cannot be decoded"
NAN_PROBABILITIES = "probabilities holding NaN"
MAX_SKIPPED = 0.01     # the largest fraction of a test set evaluate skips without failing
WITHIN_FIELDS = ("p_within", "radius_km", "in_cells")    # per photo and variant, `within.photo_scores`


@dataclasses.dataclass
class Method:
    """One evaluated system (rows of Table 6): a model or an ISN ensemble.

    name: label of its rows and of its results folder (e.g. "base_M", "ISNs").
    locator: its partitionings' standard / hierarchical geo-classification and Class2GPS.
    probabilities: batch dict -> {output: float [batch, n]} mean crop probabilities.
    concepts: for ISNs, batch dict -> int64 [batch] S3 concept each image is routed to.
    source: what its answers depend on (model files, partitionings, routing), JSON-able.
    scene_level: for a model with a scene head (MTN), its level "S3" / "S16" / "S365".
    calibration: its temperatures (`geoest.inference.calibration.Calibration`) or None; with one,
      `probabilities` gives the calibrated outputs and the raw ones under "raw/<output>". The
      answers (cells, coordinates: Table 6) always come from the raw ones, the paper's method;
      temperatures change how sure an answer is, never the answer.
    within_weights: W_R of its fine cells (`geoest.geo.within.WithinWeights`) or None; with them
      evaluate reports P(error <= R) and R_p; distance_temperature: their extra temperature on f*.
    """
    name: str
    locator: Locator
    probabilities: Callable
    concepts: Callable | None = None
    scene_level: str | None = None
    calibration: object = None
    source: dict = dataclasses.field(default_factory=dict)
    within_weights: object = None
    distance_temperature: float | None = None

    def raw(self, probs: dict) -> dict:
        """The uncalibrated outputs of `probabilities`' result (the result itself without temperatures)."""
        from geoest.inference.calibration import RAW

        if self.calibration is None:
            return probs
        return {k[len(RAW):]: v for k, v in probs.items() if k.startswith(RAW)}

    def distributions(self, probs: dict, distance: bool = False) -> dict:
        """{"before": cells' probabilities of the main output, and "after" when calibrated}, numpy [B, n];
        with `distance` and a distance temperature, also "distance": the calibrated one tempered by it."""
        out = {"before": self.locator.cell_probabilities(self.raw(probs))[self.locator.main]}
        if self.calibration is not None:
            out["after"] = self.calibration.cell_probabilities(self.locator, probs)[self.locator.main]
        if distance and self.distance_temperature is not None:
            out["distance"] = within.sharpen(out.get("after", out["before"]), self.distance_temperature)
        return out


def model_method(name: str, geo_model, centers: str = "mean", calibration=None) -> Method:
    """A single trained model (`geoest.inference.modeldir.GeoModel`), three-crop inference, with its
    temperatures when `calibration` is given."""
    sizes = output_sizes(geo_model.model)
    scene_level = SCENE_WIDTHS.get(sizes[SCENE_HEAD]) if SCENE_HEAD in sizes else None
    model = geo_model.model if calibration is None else calibration.wrap(geo_model.model, keep_raw=True)
    return Method(name, Locator(geo_model.partitionings, centers),
                  lambda batch: {k: v.numpy() for k, v in crop_probabilities(model, batch["crops"]).items()},
                  scene_level=scene_level, calibration=calibration,
                  source=dict(_model_source(geo_model, centers),
                              temperatures=None if calibration is None
                              else {k: float(v) for k, v in calibration.temperatures.items()}))


def _model_source(geo_model, centers: str) -> dict:
    return {"model": file_identity(geo_model.path), "centers": centers,
            "partitionings": {p.name: digest([p.cell_ids.astype("<u8").tobytes(), p.centers.astype("<f8").tobytes()])
                              for p in geo_model.partitionings}}


def isn_method(name: str, geo_models: dict, scenes, centers: str = "mean") -> Method:
    """ISNs(T, C, S3): dict concept -> GeoModel; `scenes` gives each batch's S3 probabilities."""
    layouts = {c: [(p.name, len(p)) for p in m.partitionings] for c, m in geo_models.items()}
    if len({tuple(sorted(v)) for v in layouts.values()}) != 1:
        raise InputError(f"the ISNs were trained on different partitionings: {layouts}")
    ensemble = IsnEnsemble({c: m.model for c, m in geo_models.items()}, scenes)
    return Method(name, Locator(next(iter(geo_models.values())).partitionings, centers),
                  ensemble.probabilities, ensemble.concepts,
                  source={c: _model_source(m, centers) for c, m in geo_models.items()})


def load_scene_hierarchy_dir(places365_dir):
    """The Places365 scene hierarchy from a folder holding its two files (None -> None)."""
    if not places365_dir:
        return None
    from geoest.scene.places365 import load_scene_hierarchy, resolve_places365_files

    return load_scene_hierarchy(*resolve_places365_files(places365_dir))


def load_methods(model_dirs: dict | None = None, isn_dirs: dict | None = None, *, scene_model=None,
                 scene_output: str | None = None, scene_preprocess: str = "tf", scene_hierarchy=None,
                 partitioning_csvs=(), centers: str = "mean", model_centers: dict | None = None,
                 calibration: str | None = None):
    """The methods to evaluate or predict with, from training model dirs.

    Args:
      model_dirs: {method name: model dir}, one method per model, in this order
        (`geoest.cli.named_dirs` makes it from "NAME=DIR" flags).
      isn_dirs: {concept: model dir} for exactly indoor, natural and urban: one ISN ensemble,
        "ISNs", after the models.
      scene_model: routing for the ISNs: None (the test data's scene probabilities), an MTN's
        model dir (its "scene" head), a scene classifier file (.keras with one output) or
        "places365", the converted Places365 ResNet-152 (`geoest.scene.labeler.default_weights_path`).
      scene_output: "probabilities" or "logits", only for a scene model whose last activation does
        not tell (`geoest.inference.isn.output_kind`); None otherwise.
      scene_preprocess: a float-input scene classifier's input convention ("tf" = [-1, 1];
        "caffe" for the converted Places365 release; see `geoest.scene.labeler.PREPROCESSING`);
        an MTN takes the uint8 crops as they are.
      scene_hierarchy: Places365 hierarchy, needed for 16 or 365 scene outputs.
      partitioning_csvs: partitioning CSVs overriding those found in the model dirs.
      centers: Class2GPS "mean" or "geometric".
      model_centers: {method name: "mean" or "geometric"} for models whose Class2GPS differs from
        `centers` (Table 6: base-vgg_c(L, m) is base-vgg(L, m) with the cells' geometric centres).
      calibration: temperatures of the models: None (each model dir's calibration.json when it has
        one), False (uncalibrated) or the path of a calibration file (one model dir only). ISNs
        are not calibrated.
    Returns:
      (list of Method, input image size S).
    """
    from geoest.inference.calibration import load_calibration, load_distance_events
    from geoest.inference.isn import ModelScenes, data_scenes
    from geoest.inference.modeldir import load_geo_model, load_keras_model, model_file

    model_dirs, isn_dirs = dict(model_dirs or {}), dict(isn_dirs or {})
    if calibration not in (None, False) and len(model_dirs) != 1:
        raise InputError(f"temperature file {calibration}: give it with exactly one --model_dir")
    if isn_dirs:
        check_concepts(isn_dirs, "ISN model dirs")   # before any model is loaded
    methods, sizes = [], set()
    for name, path in model_dirs.items():
        geo_model = load_geo_model(path, partitioning_csvs)
        sizes.add(geo_model.model.input_shape[1])
        methods.append(model_method(name, geo_model, (model_centers or {}).get(name, centers),
                                    load_calibration(geo_model, calibration)))
        weights, temperature = load_distance_events(path, methods[-1].locator.partitioning(methods[-1].locator.main))
        if weights is not None:
            methods[-1].within_weights, methods[-1].distance_temperature = weights, temperature
            methods[-1].source.update(within_weights=weights.digest, distance_temperature=temperature)
    if isn_dirs:
        geo_models = {concept: load_geo_model(path, partitioning_csvs) for concept, path in isn_dirs.items()}
        sizes.update(m.model.input_shape[1] for m in geo_models.values())
        if scene_model is None:
            scenes = data_scenes
        elif pathlib.Path(scene_model).is_dir():
            from geoest.models import require_uint8_images

            path = model_file(scene_model)
            mtn = load_keras_model(path)
            require_uint8_images(mtn, path)
            scenes = ModelScenes(mtn, scene_hierarchy=scene_hierarchy, preprocess=scene_preprocess,
                                 source=str(path), kind=scene_output)
        else:
            from geoest.scene import labeler
            if scene_model == labeler.PLACES365_MODEL:    # the converted release (python -m geoest.convert_places365)
                from geoest.scene.places365 import load_default_hierarchy

                scene_model = labeler.default_weights_path()
                classifier = labeler.load_scene_classifier(scene_model)
                scene_hierarchy = scene_hierarchy or load_default_hierarchy()   # beside it in the cache
            else:
                classifier = load_keras_model(scene_model)
            scenes = ModelScenes(classifier, output=None, scene_hierarchy=scene_hierarchy, preprocess=scene_preprocess,
                                 source=str(scene_model), kind=scene_output)
        methods.append(isn_method("ISNs", geo_models, scenes, centers))
        methods[-1].source["routing"] = (file_identity(model_file(scene_model) if pathlib.Path(scene_model).is_dir()
                                                       else scene_model) if scene_model else "test data")
    if not methods:
        raise InputError("nothing to run: give --model_dir and/or --isn_dirs")
    if len(sizes) != 1:
        raise InputError(f"the models take different input sizes {sorted(sizes)}; run them separately")
    return methods, sizes.pop()


def record_batches(file_pattern, batch_size: int, image_size: int, scene_hierarchy=None, skip_log=None):
    """Test batches from TFRecords (`geoest.data.pipeline.eval_dataset`), as numpy dicts."""
    from geoest.data import pipeline

    return pipeline.eval_dataset(file_pattern, batch_size, image_size=image_size, scene_matrices=scene_hierarchy,
                                 skip_log=skip_log).as_numpy_iterator()


def image_batches(images_dir, meta_csv, batch_size: int, image_size: int, scene_hierarchy=None, skip_log=None,
                  allow_absolute_paths: bool = False, follow_links: bool = False, min_side: int | None = None):
    """Test batches from image files and a meta CSV (IMG_ID = path under images_dir, LAT, LON and
    optional scene columns), as numpy dicts; the number of images is `len(read_meta_csv(...))`.

    Scene probabilities: the Prob_* columns, else the prob365_* columns aggregated to S3 with
    `scene_hierarchy`, else unknown (NaN). Scene labels ("scene_labels" int64 [B, 3], S3 / S16 /
    S365): the S*_Label columns, else the argmax of the probabilities at that level, else -1.
    An IMG_ID that is absolute (unless `allow_absolute_paths`) or whose ".." leaves images_dir is
    never opened; it is skipped and named in `skip_log`, like a missing file, and so is a symbolic
    link in images_dir to a file outside it unless `follow_links` (those followed are counted in
    `skip_log.links_followed`). A photo whose shorter side is below `min_side` px (default
    `geoest.data.photo_checks.default_min_side(image_size)`; 0 answers any size) is skipped and named too.
    """
    from geoest.data import pipeline
    from geoest.data.meta_csv import read_meta_csv
    from geoest.data.photo_checks import default_min_side
    from geoest.data.skip_log import SkipLog

    meta = read_meta_csv(meta_csv)
    probs3 = meta.probs3
    if probs3 is None and meta.probs365 is not None and scene_hierarchy is not None:
        probs3 = scene_hierarchy.aggregate(meta.probs365, "S3")
    if probs3 is None:
        probs3 = np.full((len(meta), len(CONCEPTS)), np.nan, np.float32)
    labels = _meta_scene_labels(meta, probs3, scene_hierarchy)
    skip_log = skip_log if skip_log is not None else SkipLog()
    paths, outside = meta.image_paths(images_dir, allow_absolute_paths)
    for k, reason in outside.items():
        skip_log.add(meta.ids[k], reason)
    row_of = {}
    for k, path in paths.items():
        leaves = not os.path.isabs(meta.ids[k]) and link_leaves(images_dir, path)
        if leaves and not follow_links:
            skip_log.add(meta.ids[k], OUTSIDE_LINK)        # never opened
        elif pathlib.Path(path).is_file():
            row_of[path] = k
            skip_log.links_followed += leaves
        else:
            skip_log.add(meta.ids[k], MISSING)
    if not row_of:
        return
    ids = np.array(meta.ids)
    min_side = default_min_side(image_size) if min_side is None else min_side
    for batch in pipeline.image_dataset(list(row_of), batch_size, image_size=image_size, skip_log=skip_log,
                                        min_side=min_side).as_numpy_iterator():
        rows = np.array([row_of[p.decode()] for p in batch["id"]])
        yield {"crops": batch["crops"], "id": ids[rows], "lat": meta.lat_deg[rows], "lon": meta.lon_deg[rows],
               "probs3": probs3[rows], "scene_labels": labels[rows]}


def _meta_scene_labels(meta, probs3, scene_hierarchy=None) -> np.ndarray:
    """int64 [n, 3] S3 / S16 / S365 labels of a meta CSV's photos (as the records' pipeline gives
    them): the S*_Label columns, else the argmax of the probabilities at that level, else -1."""
    from geoest.scene.places365 import LEVELS

    labels = np.full((len(meta), len(LEVELS)), -1, np.int64) if meta.scene_labels is None else meta.scene_labels
    derived = {"S3": probs3}
    if meta.probs365 is not None:
        derived["S365"] = meta.probs365
        if scene_hierarchy is not None:
            derived["S16"] = scene_hierarchy.aggregate(meta.probs365, "S16")
    labels = labels.copy()
    for k, level in enumerate(LEVELS):
        if level in derived:
            labels[:, k] = np.where(labels[:, k] >= 0, labels[:, k], scene_label(derived[level]))
    return labels


def scene_accuracy(predicted, labels, level: str) -> dict:
    """Scene top-1 accuracy of an MTN (§3.3) at its level over the images with a label there.

    Args:
      predicted: int [N] predicted scene class; labels: int [N, 3] S3 / S16 / S365 labels (-1 unknown).
    Returns:
      {"level": level, "count": labelled images, "top1": fraction or None}.
    """
    from geoest.scene.places365 import LEVELS

    truth = np.asarray(labels)[:, LEVELS.index(level)]
    known = truth >= 0
    top1 = float(np.mean(np.asarray(predicted)[known] == truth[known])) if known.any() else None
    return {"level": level, "count": int(known.sum()), "top1": top1}


def score_file(predictions_csv, meta_csv=None) -> dict:
    """Scores of a results file in the published layout (`geoest.geo.scoring.read_results_csv`):
    {"all": summarize(...)} plus, with an Im2GPS-format meta CSV, one per S3 concept (Table 4) —
    what summary.json holds for the output that wrote the file.

    Images of the results file missing from the meta CSV, or a meta CSV without S3_Label, are an
    error naming the first one.
    """
    from geoest.data.meta_csv import read_meta_csv
    from geoest.geo.scoring import read_results_csv, summarize
    from geoest.scene.columns import LABEL_COLUMNS

    results = read_results_csv(predictions_csv)
    ids, dist = results.ids, results.dist_km
    scores = {"all": summarize(dist)}
    if meta_csv is not None:
        meta = read_meta_csv(meta_csv, author=False, probs365=False, required=[LABEL_COLUMNS[0]])  # S3_Label
        scene = dict(zip(meta.ids, meta.scene_labels[:, 0].tolist()))
        missing = [i for i in ids if i not in scene]
        if missing:
            raise InputError(f"{meta_csv}: no row for image {missing[0]!r} of "
                             f"{predictions_csv} ({len(missing)} images missing)")
        labels = np.array([scene[i] for i in ids])
        for k, concept in enumerate(CONCEPTS):
            scores[concept] = summarize(dist[labels == k])
    return scores


def test_set_identity(test_records=None, images_dir=None, meta_csv=None) -> dict:
    """What an evaluation's results depend on in its test set: each TFRecord file's path, size and
    modification time; or the meta CSV's content digest and the images folder."""
    if test_records:
        import tensorflow as tf

        return {"records": [file_identity(f) for f in sorted(tf.io.gfile.glob(test_records))]}
    with open(meta_csv, "rb") as f:
        return {"meta_csv": digest(iter(lambda: f.read(1 << 20), b"")),
                "images_dir": str(pathlib.Path(images_dir).resolve())}


def skipped_photos(skip_log, yielded: int, expected: int | None = None) -> dict:
    """{reason: n} of the test photos that were not scored.

    Args:
      skip_log: the `geoest.data.skip_log.SkipLog` of the test batches.
      yielded: photos the batches held.
      expected: photos in the test set when known (meta CSV rows); else the records read.
    """
    from geoest.data.skip_log import DAMAGED_SHARD

    counts = {reason: n for reason, n in skip_log.counts.items() if n}
    read = expected if expected is not None else skip_log.records_read
    undecodable = read - yielded - sum(counts.values())
    if undecodable > 0:
        counts[UNDECODABLE] = undecodable
    if skip_log.damaged:
        counts[DAMAGED_SHARD] = skip_log.lost_in_damaged_shards()
    return counts


def output_label(output: str) -> str:
    """How Table 3 writes an output: f* for the hierarchy, else the partitioning's name."""
    return "f*" if output == HIERARCHY else output


def _to_str(values) -> np.ndarray:
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()])


class _Store:
    """Per-image results accumulated over batches, saved for resume."""

    def __init__(self, path: pathlib.Path, keys, resume: bool = True):
        self.path, self.keys = path, ["id", "lat", "lon", "scene", "scene_labels"] + list(keys)
        self.columns = {k: [] for k in self.keys}
        self.done = set()
        if path.exists() and not resume:
            path.unlink()
        if path.exists():
            with np.load(path, allow_pickle=False) as saved:
                if sorted(saved.files) == sorted(self.keys):
                    self.columns = {k: [saved[k]] for k in self.keys}
                    self.done = set(saved["id"].tolist())
                    print(f"resuming evaluation: {len(self.done)} images already done ({path})")
                else:
                    logging.warning("ignoring %s: it was written for other methods", path)

    def add(self, values: dict):
        for k in self.keys:
            self.columns[k].append(np.asarray(values[k]))
        self.done.update(values["id"].tolist())

    def arrays(self) -> dict:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.columns.items()}

    def save(self):
        with writing(self.path, "partial results"), atomic_path(self.path) as tmp:
            np.savez(tmp, **self.arrays())


def _subset(batch: dict, keep: np.ndarray) -> dict:
    return {k: np.asarray(v)[keep] for k, v in batch.items()}


def _stopping(batches, store):
    """The batches, with a signal (`geoest.interrupt`) noted while one is scored: after it, the
    photos scored so far are saved and the run stops whole, resumable."""
    with interrupt.deferred():
        for batch in batches:
            yield batch
            if interrupt.requested():
                store.save()
                interrupt.stop_if_requested(f"{len(store.done)} photos scored, saved in {store.path}")


def evaluate(methods, batches, output_dir, *, total: int | None = None, reference: str | None = None,
             save_every: int = 20, masses=None, test_set: dict | None = None, overwrite: bool = False,
             skip_log=None, max_skipped: float = MAX_SKIPPED, min_confidence: float = 0.5) -> dict:
    """Evaluate methods on test batches and write results, summary, table and plot.

    Args:
      methods: list of `Method` (unique names).
      batches: iterable of dicts of numpy arrays: "crops" uint8 [B, 3, S, S, 3],
        "id" (bytes or str) [B], "lat", "lon" [B] degrees, optional "probs3" [B, 3] (NaN unknown).
      output_dir: folder for the outputs (created).
      total: number of test images, for the progress bar.
      reference: "im2gps" / "im2gps3k" to print the paper's Table 6 rows beside.
      save_every: batches between saves of the partial results (resume).
      masses: confidence-region masses p (default 0.5 and 0.9).
      test_set: what the batches come from (`test_set_identity`); with the methods' sources, the
        inputs a resumed or repeated run must share with the files already in output_dir.
      overwrite: replace files in output_dir that evaluate did not write for these inputs.
      skip_log: the batches' `SkipLog`: the photos skipped are reported by reason, and more than
        `max_skipped` of the test set (a fraction) fails the run before anything but the
        partial results is written.
      min_confidence: q of the back-off measured for methods with distance weights (each photo
        answered at the finest level whose P(error <= R_level) >= q, `geoest.geo.within.back_off`).
    Returns:
      the summary dict written to summary.json.
    Raises:
      InputError: output_dir holds files of another evaluation or someone else's (and not
        `overwrite`), the test set yielded no images, or it lost more than `max_skipped`.
    """
    from tqdm import tqdm

    from geoest.geo import confidence as conf
    from geoest.geo.scoring import summarize, write_results_csv
    from geoest.inference import calibration as cal

    names = [m.name for m in methods]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"method names {names} must be unique and at least one")
    output_dir = pathlib.Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"output_dir {output_dir} is a file; expected a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = [output_dir / name for name in (PARTIAL, "table6.txt", "summary.json", "confidence.json", "accuracy.png")]
    outputs += [output_dir / m.name / f"results_{o}.csv" for m in methods for o in m.locator.names]
    outputs += [output_dir / m.name / plot for m in methods for plot in ("reliability.png", "accuracy_coverage.png")]
    resume = claim_outputs(output_dir / MANIFEST, {"test set": test_set, "methods": {m.name: m.source for m in methods}},
                           outputs, overwrite=overwrite, command="geoest.evaluate")
    keys = [f"{m.name}/{o}/{c}" for m in methods for o in m.locator.names for c in ("lat", "lon")]
    keys += [f"{m.name}/routed" for m in methods if m.concepts]
    masses = conf.check_masses(masses or conf.DEFAULT_MASSES)
    confidences = {m.name: conf.Confidence([m.locator.partitioning(m.locator.main)], masses=masses)
                   for m in methods}
    variants = {m.name: ["before"] + (["after"] if m.calibration else []) for m in methods}
    fields = list(cal.CONFIDENCE_FIELDS) + [f"in_cells_{conf.mass_key(p)}" for p in masses]
    keys += [f"{m.name}/confidence/{v}/{f}" for m in methods for v in variants[m.name] for f in fields]
    keys += [f"{m.name}/scene_top" for m in methods if m.scene_level]
    # P(error <= R) and R_p: from the model dir's W_R, else the cell-mean approximation (said once)
    for m in methods:
        if m.within_weights is None:
            logging.warning("%s: no distance weights W_R in its model dir: P(error <= R) and R_p take each cell's "
                            "photos to lie at its mean (the cell-mean approximation; python -m "
                            "geoest.within_weights writes W_R)", m.name)
    weights = {m.name: m.within_weights if m.within_weights is not None
               else within.WithinWeights.from_means(m.locator.partitioning(m.locator.main), m.locator.centers)
               for m in methods}
    within_variants = {m.name: variants[m.name] + (["distance"] if m.distance_temperature is not None else [])
                       for m in methods}
    keys += [f"{name}/within/{v}/{f}" for name, vs in within_variants.items() for v in vs for f in WITHIN_FIELDS]
    keys += [f"{name}/within/{f}" for name in within_variants for f in ("in_cell", "dist_km")]
    min_confidence = conf.check_min_confidence(min_confidence)
    store = _Store(output_dir / PARTIAL, keys, resume)
    skipped_nan = []
    progress = tqdm(total=total, initial=len(store.done), unit="img", desc="evaluate")
    yielded = 0
    for step, batch in enumerate(_stopping(batches, store)):
        ids = _to_str(batch["id"])
        yielded += len(ids)
        keep = np.array([i not in store.done for i in ids], bool)
        if not keep.any():
            continue
        batch = _subset(dict(batch, id=ids), keep)
        n = len(batch["id"])
        probs3 = np.asarray(batch.get("probs3", np.full((n, 3), np.nan)), np.float64)
        labels = np.asarray(batch.get("scene_labels", np.full((n, 3), -1)), np.int64)
        # The S3 label (§3.2): stored, else the most probable concept.
        scene = np.where(labels[:, 0] >= 0, labels[:, 0], scene_label(probs3))
        row = {"id": batch["id"], "lat": batch["lat"].astype(np.float64),
               "lon": batch["lon"].astype(np.float64), "scene": scene.astype(np.int64), "scene_labels": labels}
        finite = np.ones(len(batch["id"]), bool)
        for method in methods:
            routed = method.concepts(batch) if method.concepts else None
            probs = method.probabilities(batch, routed) if routed is not None else method.probabilities(batch)
            finite &= np.all([conf.finite_rows(v) for v in probs.values()], axis=0)
            probs = {k: np.nan_to_num(v) for k, v in probs.items()}
            if routed is not None:
                row[f"{method.name}/routed"] = routed
            if method.scene_level:
                row[f"{method.name}/scene_top"] = np.argmax(probs["scene"], axis=1)
            for output, located in method.locator.locate(method.raw(probs), top_k_cells=1).items():
                row[f"{method.name}/{output}/lat"] = located.lat_deg
                row[f"{method.name}/{output}/lon"] = located.lon_deg
            distributions = method.distributions(probs, distance=True)
            predicted = np.argmax(distributions["before"], axis=-1)
            for variant in variants[method.name]:
                scores = cal.confidence_scores(distributions[variant], row["lat"], row["lon"], confidences[method.name],
                                               predicted)
                row.update({f"{method.name}/confidence/{variant}/{f}": scores[f] for f in fields})
            # P(error <= R) and R_p (the quantile) per variant of the distribution
            fine = method.locator.partitioning(method.locator.main)
            truth = fine.assign(np.clip(row["lat"], -90, 90), np.clip(row["lon"], -180, 180))
            for variant in within_variants[method.name]:
                scores = within.photo_scores(weights[method.name], distributions[variant], predicted, truth,
                                             row["lat"], row["lon"], masses)
                row.update({f"{method.name}/within/{variant}/{f}": scores[f] for f in WITHIN_FIELDS})
            row.update({f"{method.name}/within/{f}": scores[f] for f in ("in_cell", "dist_km")})
        if not finite.all():    # a photo whose probabilities hold NaN: reported, never scored
            skipped_nan += batch["id"][~finite].tolist()
            logging.warning("skipped %d photo(s) whose probabilities hold NaN: %s", (~finite).sum(),
                            batch["id"][~finite][:5].tolist())
            row = {k: np.asarray(v)[finite] for k, v in row.items()}
        store.add(row)
        progress.update(len(batch["id"]))
        if (step + 1) % save_every == 0:
            store.save()
    progress.close()
    store.save()
    data = store.arrays()
    skipped = skipped_photos(skip_log, yielded, total) if skip_log is not None else {}
    _check_skipped(len(data["id"]) + len(skipped_nan), skipped, max_skipped)   # the test set's own losses
    if skipped_nan:
        skipped[NAN_PROBABILITIES] = len(skipped_nan)
        if len(data["id"]) == 0:
            raise InputError(f"no test photo scored: {skipped_line(0, skipped)}")

    summary, rows, curves, how_sure = {}, [], {}, {}
    for method in methods:
        summary[method.name] = {}
        (output_dir / method.name).mkdir(exist_ok=True)
        for output in method.locator.names:
            pred_lat, pred_lon = data[f"{method.name}/{output}/lat"], data[f"{method.name}/{output}/lon"]
            with atomic_path(output_dir / method.name / f"results_{output}.csv") as tmp:
                dist_km = write_results_csv(tmp, data["id"], data["lat"], data["lon"], pred_lat, pred_lon)
            entry = {"all": summarize(dist_km)}
            if (data["scene"] >= 0).any():   # the same keys as tools/score_predictions.py --meta_csv
                entry.update({concept: summarize(dist_km[data["scene"] == index])
                              for index, concept in enumerate(CONCEPTS)})
            summary[method.name][output] = entry
            label = f"{method.name} ({output_label(output)})"
            rows.append((label, entry["all"]))
            curves[label] = dist_km
        if method.concepts:
            routed = data[f"{method.name}/routed"]
            summary[method.name]["routed_images"] = {c: int((routed == i).sum()) for i, c in enumerate(CONCEPTS)}
        if method.scene_level:
            summary[method.name]["scene_accuracy"] = scene_accuracy(
                data[f"{method.name}/scene_top"], data["scene_labels"], method.scene_level)
        confidence = {v: cal.confidence_summary({f: data[f"{method.name}/confidence/{v}/{f}"] for f in fields},
                                                masses) for v in variants[method.name]}
        how_sure[method.name] = {**confidence, "skipped_nan": skipped_nan}
        with atomic_path(output_dir / method.name / "reliability.png") as tmp:
            cal.plot_reliability(confidence, tmp,
                                 title=f"{method.name} ({output_label(method.locator.main)}), {len(data['id'])} photos")
        title = f"{method.name} ({output_label(method.locator.main)}), {len(data['id'])} photos"
        name = method.name
        scores = {v: {f: data[f"{name}/within/{v}/{f}"] for f in WITHIN_FIELDS} for v in within_variants[name]}
        for v in scores.values():
            v.update({f: data[f"{name}/within/{f}"] for f in ("in_cell", "dist_km")})
        how_sure[name]["within"] = {"weights": weights[name].source,
                                    **within.evaluation_figures(scores, masses, min_confidence=min_confidence)}
        ranked = how_sure[name]["within"]["ranked"]
        with atomic_path(output_dir / name / "accuracy_coverage.png") as tmp:
            plot_ranking_curves(data[f"{name}/within/dist_km"], scores[ranked]["p_within"], within.THRESHOLDS_KM,
                                tmp, title=f"{title}, ranked by P(error <= R) ({ranked}; W_R from the "
                                           f"{weights[name].source})")

    table = table6(rows, reference)
    scene_tables = [f"\n{concept} ({int((data['scene'] == i).sum())} images):\n"
                    + table6([(label, summary[m.name][o][concept]) for m in methods for o in m.locator.names
                              for label in [f"{m.name} ({output_label(o)})"]])
                    for i, concept in enumerate(CONCEPTS) if (data["scene"] == i).any()]
    scene_lines = [f"\n{name} scene top-1 ({a['level']}, §3.3 MTN): "
                   + (f"{100 * a['top1']:.1f} % of {a['count']} labelled images" if a["count"] else "no labelled images")
                   for name, a in ((m.name, summary[m.name]["scene_accuracy"]) for m in methods if m.scene_level)]
    scene_tables += scene_lines
    write_text(output_dir / "table6.txt", table + "\n" + "".join(scene_tables) + "\n")
    write_text(output_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_text(output_dir / "confidence.json", json.dumps(how_sure, indent=1) + "\n")
    with atomic_path(output_dir / "accuracy.png") as tmp:
        plot_accuracy(curves, tmp, title=f"{len(data['id'])} test images")
    print(table)
    print("".join(scene_tables))
    for method in methods:
        print(f"{method.name} ({output_label(method.locator.main)}), how sure:")
        print("\n".join("  " + line for line in cal.report_lines(how_sure[method.name])))
        print("\n".join("  " + line for line in within.evaluation_lines(how_sure[method.name]["within"])))
    if skipped_nan:
        print(f"skipped {len(skipped_nan)} photo(s) whose probabilities hold NaN: {', '.join(skipped_nan[:20])}")
    print(skipped_line(len(data["id"]), skipped))
    (output_dir / PARTIAL).unlink()
    return summary


def skipped_line(scored: int, skipped: dict) -> str:
    """The closing summary: photos scored and skipped, by reason."""
    line = f"{scored} test photos scored, {sum(skipped.values())} skipped"
    return line + (": " + ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) if skipped else "")


def _check_skipped(scored: int, skipped: dict, max_skipped: float) -> None:
    lost = sum(skipped.values())
    if scored == 0:
        raise InputError("the test set yielded no images" + (f" ({skipped_line(0, skipped)})" if lost else ""))
    fraction = lost / (scored + lost)
    if fraction > max_skipped:
        raise InputError(f"{skipped_line(scored, skipped)}: {fraction:.1%} of the test set, more than the "
                         f"{max_skipped:.1%} allowed; no results written (the partial results are kept). "
                         f"Repair the test set, or accept the loss with --max_skipped={min(1.0, fraction + 0.005):.3f}")


__all__ = ["Method", "model_method", "isn_method", "evaluate", "record_batches", "image_batches",
           "output_label", "scene_accuracy", "score_file", "test_set_identity", "skipped_photos"]
