"""§4 evaluation: great-circle accuracy of models and ISN ensembles on a test set.

One pass over the test batches (`geoest.inference.batches`) runs every method
(`geoest.inference.methods`: a model, or the ISNs routed by scene) and scores each photo; the
scores over the test set are then reported (`geoest.inference.report`), per method and output
(each partitioning and the hierarchy f*): per method and output (each partitioning and the hierarchy f*):
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
                                               temperatures) after calibration (`geoest.inference.confidence_scores.confidence_summary`)
                                               of the top cell's probability; and "within"
                                               (`geoest.geo.how_sure.evaluation_figures`, W_R from the model
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
import logging
import pathlib

import numpy as np
from tqdm import tqdm

from geoest import interrupt
from geoest.errors import InputError
from geoest.files import atomic_path, claim_outputs, writing
from geoest.geo.checks import check_masses, check_min_confidence
from geoest.geo.confidence import Confidence, finite_rows
from geoest.geo.distance_weights import WithinWeights
from geoest.geo.how_sure import evaluation_figures, photo_scores
from geoest.geo.regions import DEFAULT_MASSES, mass_key
from geoest.geo.scoring import errors_km
from geoest.inference.methods import Method
from geoest.inference.confidence_scores import CONFIDENCE_FIELDS, confidence_scores, confidence_summary
from geoest.inference.report import MethodReport, print_evaluation, write_evaluation
from geoest.inference.scene_scores import scene_accuracy, scene_scores
from geoest.scene.places365 import CONCEPTS, scene_label

PARTIAL = "evaluate_partial.npz"
MANIFEST = "evaluate.json"
UNDECODABLE = "JPEG data that cannot be decoded"
NAN_PROBABILITIES = "probabilities holding NaN"
MAX_SKIPPED = 0.01     # the largest fraction of a test set evaluate skips without failing
WITHIN_FIELDS = ("p_within", "radius_km", "in_cells")    # per photo and variant, `how_sure.photo_scores`
PHOTO_KEYS = ("id", "lat", "lon", "scene", "scene_labels")   # per photo, beside the methods' scores


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
      test_set: what the batches come from (`geoest.inference.batches.test_set_identity`); with the
        methods' sources, the inputs a resumed or repeated run must share with the files already in
        output_dir.
      overwrite: replace files in output_dir that evaluate did not write for these inputs.
      skip_log: the batches' `SkipLog`: the photos skipped are reported by reason, and more than
        `max_skipped` of the test set (a fraction) fails the run before anything but the
        partial results is written.
      min_confidence: q of the back-off measured for methods with distance weights (each photo
        answered at the finest level whose P(error <= R_level) >= q, `geoest.geo.back_off.finest_level_reaching`).
    Returns:
      the summary dict written to summary.json.
    Raises:
      InputError: output_dir holds files of another evaluation or someone else's (and not
        `overwrite`), the test set yielded no images, or it lost more than `max_skipped`.
    """
    output_dir = _output_folder(methods, output_dir)
    resume = _claim(output_dir, methods, test_set, overwrite)
    masses = check_masses(masses or DEFAULT_MASSES)
    plans = [_Plan.of(method, masses) for method in methods]
    min_confidence = check_min_confidence(min_confidence)
    store = _Store(output_dir / PARTIAL, [key for plan in plans for key in plan.keys()], resume)
    yielded, skipped_nan = _score_batches(plans, batches, store, total, save_every)
    data = store.arrays()
    skipped = _skipped(skip_log, yielded, total, len(data["id"]), skipped_nan, max_skipped)
    reports = [_report(plan, data, min_confidence, skipped_nan) for plan in plans]
    tables = write_evaluation(output_dir, data["id"], data["lat"], data["lon"], data["scene"], reports, reference)
    print_evaluation(tables, reports, skipped_nan, skipped_line(len(data["id"]), skipped))
    (output_dir / PARTIAL).unlink()
    return {report.name: report.summary for report in reports}


def _output_folder(methods, output_dir) -> pathlib.Path:
    """The output folder (created), after checking the methods' names."""
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"method names {names} must be unique and at least one")
    output_dir = pathlib.Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"output_dir {output_dir} is a file; expected a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


def _claim(output_dir: pathlib.Path, methods, test_set, overwrite: bool) -> bool:
    """Claims every file evaluate writes for these inputs (`geoest.files.claim_outputs`); True: resume."""
    outputs = [output_dir / name for name in (PARTIAL, "table6.txt", "summary.json", "confidence.json", "accuracy.png")]
    outputs += [output_dir / m.name / f"results_{o}.csv" for m in methods for o in m.locator.names]
    outputs += [output_dir / m.name / plot for m in methods for plot in ("reliability.png", "accuracy_coverage.png")]
    return claim_outputs(output_dir / MANIFEST, {"test set": test_set, "methods": {m.name: m.source for m in methods}},
                         outputs, overwrite=overwrite, command="geoest.evaluate")


@dataclasses.dataclass
class _Plan:
    """What evaluate measures of one method per photo.

    confidence: its regions over the main output's cells; variants: the distributions scored,
    "before" and (calibrated) "after"; within_variants: those of P(error <= R), plus "distance" with a
    distance temperature; weights: W_R of the fine cells (the model dir's, else the cell-mean
    approximation); masses: the region masses p.
    """
    method: Method
    confidence: object
    variants: list
    within_variants: list
    weights: object
    masses: tuple

    @classmethod
    def of(cls, method: Method, masses) -> "_Plan":
        main = method.locator.partitioning(method.locator.main)
        # P(error <= R) and R_p: from the model dir's W_R, else the cell-mean approximation (said once)
        if method.within_weights is None:
            logging.warning("%s: no distance weights W_R in its model dir: P(error <= R) and R_p take each cell's "
                            "photos to lie at its mean (the cell-mean approximation; python -m "
                            "geoest.within_weights writes W_R)", method.name)
        weights = (method.within_weights if method.within_weights is not None
                   else WithinWeights.from_means(main, method.locator.centers))
        variants = ["before"] + (["after"] if method.calibration else [])
        return cls(method, Confidence([main], masses=masses), variants,
                   variants + (["distance"] if method.distance_temperature is not None else []), weights, masses)

    @property
    def fields(self) -> list:
        """The per-photo confidence fields of each variant."""
        return list(CONFIDENCE_FIELDS) + [f"in_cells_{mass_key(p)}" for p in self.masses]

    def keys(self) -> list:
        """The method's per-photo arrays in the store: "<name>/<what>"."""
        name, method = self.method.name, self.method
        keys = [f"{name}/{o}/{c}" for o in method.locator.names for c in ("lat", "lon")]
        keys += [f"{name}/routed"] if method.concepts else []
        keys += [f"{name}/confidence/{v}/{f}" for v in self.variants for f in self.fields]
        keys += [f"{name}/scene_top"] if method.scene_level else []
        keys += [f"{name}/within/{v}/{f}" for v in self.within_variants for f in WITHIN_FIELDS]
        return keys + [f"{name}/within/{f}" for f in ("in_cell", "dist_km")]

    def score(self, batch: dict, row: dict) -> np.ndarray:
        """Runs the method on a batch and adds its per-photo scores to `row` (the batch's photos:
        "lat", "lon" float64 [B]); returns bool [B], the photos whose probabilities are finite."""
        method, name = self.method, self.method.name
        routed = method.concepts(batch) if method.concepts else None
        probs = method.probabilities(batch, routed) if routed is not None else method.probabilities(batch)
        finite = np.all([finite_rows(v) for v in probs.values()], axis=0)
        probs = {k: np.nan_to_num(v) for k, v in probs.items()}
        if routed is not None:
            row[f"{name}/routed"] = routed
        if method.scene_level:
            row[f"{name}/scene_top"] = np.argmax(probs["scene"], axis=1)
        for output, located in method.locator.locate(method.raw(probs), top_k_cells=1).items():
            row[f"{name}/{output}/lat"] = located.lat_deg
            row[f"{name}/{output}/lon"] = located.lon_deg
        distributions = method.distributions(probs, distance=True)
        predicted = np.argmax(distributions["before"], axis=-1)
        for variant in self.variants:
            scores = confidence_scores(distributions[variant], row["lat"], row["lon"], self.confidence, predicted)
            row.update({f"{name}/confidence/{variant}/{f}": scores[f] for f in self.fields})
        # P(error <= R) and R_p (the quantile) per variant of the distribution
        fine = method.locator.partitioning(method.locator.main)
        truth = fine.assign(np.clip(row["lat"], -90, 90), np.clip(row["lon"], -180, 180))
        for variant in self.within_variants:
            scores = photo_scores(self.weights, distributions[variant], predicted, truth,
                                         row["lat"], row["lon"], self.masses)
            row.update({f"{name}/within/{variant}/{f}": scores[f] for f in WITHIN_FIELDS})
        row.update({f"{name}/within/{f}": scores[f] for f in ("in_cell", "dist_km")})
        return finite


def _score_batches(plans, batches, store, total: int | None, save_every: int):
    """Scores the photos of the batches not yet in the store, saving it every `save_every` batches.

    Returns:
      (photos the batches held, ids of the photos left out because their probabilities hold NaN).
    """
    skipped_nan, yielded = [], 0
    progress = tqdm(total=total, initial=len(store.done), unit="img", desc="evaluate")
    for step, batch in enumerate(_stopping(batches, store)):
        ids = _to_str(batch["id"])
        yielded += len(ids)
        keep = np.array([i not in store.done for i in ids], bool)
        if not keep.any():
            continue
        batch = _subset(dict(batch, id=ids), keep)
        row = _photos(batch)
        finite = np.ones(len(batch["id"]), bool)
        for plan in plans:
            finite &= plan.score(batch, row)
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
    return yielded, skipped_nan


def _photos(batch: dict) -> dict:
    """The store's row of a batch's photos before any method: id, true location, scene labels."""
    n = len(batch["id"])
    probs3 = np.asarray(batch.get("probs3", np.full((n, 3), np.nan)), np.float64)
    labels = np.asarray(batch.get("scene_labels", np.full((n, 3), -1)), np.int64)
    # The S3 label (§3.2): stored, else the most probable concept.
    scene = np.where(labels[:, 0] >= 0, labels[:, 0], scene_label(probs3))
    return {"id": batch["id"], "lat": batch["lat"].astype(np.float64),
            "lon": batch["lon"].astype(np.float64), "scene": scene.astype(np.int64), "scene_labels": labels}


def _skipped(skip_log, yielded: int, total: int | None, scored: int, skipped_nan: list, max_skipped: float) -> dict:
    """{reason: n} of the test photos not scored; fails the run when they are too many or all."""
    skipped = skipped_photos(skip_log, yielded, total) if skip_log is not None else {}
    _check_skipped(scored + len(skipped_nan), skipped, max_skipped)   # the test set's own losses
    if skipped_nan:
        skipped[NAN_PROBABILITIES] = len(skipped_nan)
        if scored == 0:
            raise InputError(f"no test photo scored: {skipped_line(0, skipped)}")
    return skipped


def _report(plan: _Plan, data: dict, min_confidence: float, skipped_nan: list) -> MethodReport:
    """The scores over the test set of one method (`data`: the store's arrays)."""
    method, name = plan.method, plan.method.name
    summary, predicted, dist_km = {}, {}, {}
    scene = data["scene"] if (data["scene"] >= 0).any() else None   # the same keys as score_predictions --meta_csv
    for output in method.locator.names:
        predicted[output] = data[f"{name}/{output}/lat"], data[f"{name}/{output}/lon"]
        dist_km[output] = errors_km(data["lat"], data["lon"], *predicted[output])
        summary[output] = scene_scores(dist_km[output], scene)
    if method.concepts:
        routed = data[f"{name}/routed"]
        summary["routed_images"] = {c: int((routed == i).sum()) for i, c in enumerate(CONCEPTS)}
    if method.scene_level:
        summary["scene_accuracy"] = scene_accuracy(data[f"{name}/scene_top"], data["scene_labels"], method.scene_level)
    how_sure = {v: confidence_summary({f: data[f"{name}/confidence/{v}/{f}"] for f in plan.fields}, plan.masses)
                for v in plan.variants}
    how_sure["skipped_nan"] = skipped_nan
    scores = {v: {f: data[f"{name}/within/{v}/{f}"] for f in WITHIN_FIELDS} for v in plan.within_variants}
    for v in scores.values():
        v.update({f: data[f"{name}/within/{f}"] for f in ("in_cell", "dist_km")})
    how_sure["within"] = {"weights": plan.weights.source,
                          **evaluation_figures(scores, plan.masses, min_confidence=min_confidence)}
    ranked = how_sure["within"]["ranked"]
    return MethodReport(name, method.locator.main, predicted, dist_km, summary, how_sure,
                        ranking=(data[f"{name}/within/dist_km"], scores[ranked]["p_within"]))


def skipped_photos(skip_log, yielded: int, expected: int | None = None) -> dict:
    """{reason: n} of the test photos that were not scored.

    Args:
      skip_log: the `geoest.data.skip_log.SkipLog` of the test batches.
      yielded: photos the batches held.
      expected: photos in the test set when known (meta CSV rows); else the records read.
    """
    from geoest.data.skip_log import DAMAGED_SHARD   # loads TensorFlow

    counts = {reason: n for reason, n in skip_log.counts.items() if n}
    read = expected if expected is not None else skip_log.records_read
    undecodable = read - yielded - sum(counts.values())
    if undecodable > 0:
        counts[UNDECODABLE] = undecodable
    if skip_log.damaged:
        counts[DAMAGED_SHARD] = skip_log.lost_in_damaged_shards()
    return counts


def _to_str(values) -> np.ndarray:
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()])


class _Store:
    """Per-image results accumulated over batches, saved for resume."""

    def __init__(self, path: pathlib.Path, keys, resume: bool = True):
        self.path, self.keys = path, list(PHOTO_KEYS) + list(keys)
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


__all__ = ["MAX_SKIPPED", "PARTIAL", "evaluate", "skipped_line", "skipped_photos"]
