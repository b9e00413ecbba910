"""The SavedModel export: encoded images in, coordinates and top cells out, all of §3.4 inside.

The serving signature (`serving_default`, also the `serve` function of the loaded object) takes
`image_bytes`: tf.string [batch] of encoded JPEG / PNG / GIF / BMP files and returns, for every
output O (each partitioning's name, and "hierarchy" for f* when there are two or more):
  O_lat, O_lon             float64 [batch]   Class2GPS coordinate of the predicted cell (degrees)
  O_class                  int64 [batch]     predicted class
  O_probability            float32 [batch]   its probability (f*: renormalised product; with
                                             temperatures the calibrated one)
  O_top_classes            int64 [batch, k]
  O_top_probabilities      float32 [batch, k] (with temperatures: calibrated; the uncalibrated
                                             O_raw_probability / O_raw_top_probabilities only when asked)
  O_top_cells              string [batch, k] S2 cell tokens, best first
plus `lat`, `lon` of the main output (f*, else the only partitioning). With a
`geoest.geo.confidence.Confidence`, also how sure the answer is (`Confidence.outputs_tf`):
  cell, probability        the predicted cell of the main output and its (calibrated) probability
  region_size_<p>, radius_km_<p>, region_cells_<p>    the confidence region of mass p
  level, answer_lat, answer_lon, answer_cell, answer_probability    the back-off answer
and, with distance weights W_R (`geoest.geo.distance_weights.WithinWeights.outputs_tf`, W_R as constants),
  p_within_<R>km           float64 [batch]   P(error <= R), R = 1 / 25 / 200 / 750 / 2500 km (NaN below the cap)
  radius_km_<p>            float64 [batch]   R_p, the quantile radius (never below the cap)
and, when it has a resolution cap, ONLY those (lat, lon, cell and regions of the capped areas):
nothing finer than the cap leaves the model. Decoding, the three crops
(uint8, the same function as the evaluation pipeline), the softmax mean, the hierarchy and
Class2GPS are graph ops (one graph: on an accelerator only the outputs leave it), so `tf.saved_model.load(path)` and TF Serving need nothing from geoest.
"""
import pathlib

from geoest.errors import InputError
from geoest.files import atomic_folder
from geoest.geo.distance import THRESHOLDS_KM
from geoest.geo.distance_temperature import sharpen_tf
from geoest.inference.calibration import RAW, main_probabilities_tf
from geoest.inference.core import HIERARCHY, Locator, crop_probabilities


def serving_function(model, locator: Locator, image_size: int, top_k: int = 5, confidence=None, calibration=None,
                     within_weights=None, distance_temperature: float | None = None, raw_probabilities: bool = False):
    """A tf.function: image_bytes string [B] -> dict of tensors (see the module docstring).

    `calibration` (`geoest.inference.calibration.Calibration`) divides the heads' logits by their
    temperatures and tempers f*; `confidence` adds regions, back-off and the cap; `within_weights`
    (`geoest.geo.distance_weights.WithinWeights` of the fine cells, with `confidence`) adds P(error <= R) and
    makes radius_km_<p> the quantile R_p, on the calibrated f* tempered by `distance_temperature`.
    With `calibration`, O_probability and O_top_probabilities are the calibrated ones (the classes stay
    the model's answer); `raw_probabilities` adds the model's own as O_raw_probability and
    O_raw_top_probabilities.
    """
    import tensorflow as tf

    from geoest.data.crops import three_crops

    classify = model if calibration is None else calibration.wrap(model, keep_raw=True)

    def decode_three_crops(image_bytes):   # the decoding of pipeline.image_dataset, then §3.4's crops
        return three_crops(tf.io.decode_image(image_bytes, channels=3, expand_animations=False), image_size)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        crops = tf.map_fn(decode_three_crops, image_bytes,
                          fn_output_signature=tf.TensorSpec([3, image_size, image_size, 3], tf.uint8))
        probs = crop_probabilities(classify, crops)
        raw = probs if calibration is None else {k[len(RAW):]: v for k, v in probs.items() if k.startswith(RAW)}
        located = locator.locate_tf(raw, top_k)     # the answer: the paper's, temperatures aside
        outputs = {f"{name}_{key}": value for name, result in located.items() for key, value in result.items()}
        if calibration is not None:                 # one probability per thing: the calibrated one
            for name, result in located.items():
                shown = (main_probabilities_tf(locator, probs, calibration) if name == HIERARCHY
                         else tf.cast(probs[name], tf.float32))
                outputs[f"{name}_probability"] = tf.gather(shown, result["class"], batch_dims=1)
                outputs[f"{name}_top_probabilities"] = tf.gather(shown, result["top_classes"], batch_dims=1)
                if raw_probabilities:
                    outputs[f"{name}_raw_probability"] = result["probability"]
                    outputs[f"{name}_raw_top_probabilities"] = result["top_probabilities"]
        outputs["lat"] = located[locator.main]["lat"]
        outputs["lon"] = located[locator.main]["lon"]
        if confidence is not None:
            predicted = tf.argmax(main_probabilities_tf(locator, raw), axis=-1)
            calibrated = main_probabilities_tf(locator, probs, calibration)
            sure = confidence.outputs_tf(calibrated, predicted)
            if within_weights is not None:      # the cap of `confidence` holds for these too
                if distance_temperature is not None:
                    calibrated = sharpen_tf(calibrated, distance_temperature)
                cap = None if confidence.cap is None else confidence.cap.max_resolution_km
                sure.update(within_weights.outputs_tf(calibrated, predicted, THRESHOLDS_KM, confidence.masses, cap))
            outputs = sure if confidence.cap is not None else {**outputs, **sure}
        return outputs

    return serve


def export_saved_model(geo_model, export_dir, *, image_size: int | None = None, top_k: int = 5,
                       centers: str = "mean", confidence=None, calibration=None, within_weights=None,
                       distance_temperature: float | None = None, raw_probabilities: bool = False) -> pathlib.Path:
    """Write a SavedModel of a trained model (`geoest.inference.modeldir.GeoModel`).

    Args:
      geo_model: the model and its partitionings.
      export_dir: target folder (must not exist, or be empty).
      image_size: crop size S; default the model's input size.
      top_k: cells returned per output.
      centers: Class2GPS "mean" (§3.4) or "geometric" (base-vgg_c).
      confidence: `geoest.geo.confidence.Confidence` of the model's partitionings (regions,
        back-off, the resolution cap baked into the graph), or None.
      calibration: the model's temperatures (`geoest.inference.calibration.Calibration`) or None.
      within_weights: W_R of the fine cells (`geoest.geo.distance_weights.WithinWeights`, with `confidence`): adds
        p_within_<R>km and makes radius_km_<p> the quantile R_p; distance_temperature: its extra
        temperature on f* (`geoest.geo.distance_temperature.load_distance_temperature`) or None.
      raw_probabilities: with `calibration`, also return the uncalibrated O_raw_probability and
        O_raw_top_probabilities (otherwise every probability returned is the calibrated one).
    Returns:
      the export folder.
    """
    import keras

    export_dir = pathlib.Path(export_dir)
    if export_dir.exists() and any(export_dir.iterdir()):
        raise InputError(f"export dir {export_dir} is not empty; choose a new folder")
    model_size = geo_model.model.input_shape[1]
    image_size = image_size or model_size
    if model_size is not None and image_size != model_size:
        raise InputError(f"image_size {image_size} differs from the model's input size {model_size}")
    locator = Locator(geo_model.partitionings, centers)
    archive = keras.export.ExportArchive()
    archive.track(geo_model.model)
    if within_weights is not None and confidence is None:
        raise InputError("P(error <= R) needs the confidence settings (masses, cap) beside the weights")
    archive.add_endpoint("serve", serving_function(geo_model.model, locator, image_size, top_k, confidence,
                                                   calibration, within_weights, distance_temperature,
                                                   raw_probabilities))
    with atomic_folder(export_dir, "SavedModel") as tmp:    # absent or complete, never half-written
        archive.write_out(str(tmp), verbose=False)
    return export_dir
