"""What is evaluated (§4, the rows of Table 6): a trained model or an ISN ensemble routed by scene,
each a `Method` giving a batch's probabilities, and the loading of them from training model dirs."""
import dataclasses
import pathlib
from typing import Callable

from geoest.errors import InputError
from geoest.files import digest, file_identity
from geoest.geo.distance_temperature import sharpen
from geoest.heads import SCENE_HEAD, output_sizes
from geoest.inference.calibration import RAW, load_calibration, load_distance_events
from geoest.inference.core import Locator, crop_probabilities
from geoest.inference.isn import SCENE_WIDTHS, IsnEnsemble, ModelScenes, check_concepts, data_scenes
from geoest.inference.modeldir import load_geo_model, load_keras_model, model_file
from geoest.scene import labeler
from geoest.scene.places365 import load_default_hierarchy, load_scene_hierarchy, resolve_places365_files


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
    within_weights: W_R of its fine cells (`geoest.geo.distance_weights.WithinWeights`) or None; with them
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
            out["distance"] = sharpen(out.get("after", out["before"]), self.distance_temperature)
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
            if scene_model == labeler.PLACES365_MODEL:    # the converted release (python -m geoest.convert_places365)
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


__all__ = ["Method", "isn_method", "load_methods", "load_scene_hierarchy_dir", "model_method"]
