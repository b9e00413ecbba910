"""The SavedModel export: encoded images in, coordinates and top cells out, all of §3.4 inside.

The serving signature (`serving_default`, also the `serve` function of the loaded object) takes
`image_bytes`: tf.string [batch] of encoded JPEG / PNG / GIF / BMP files and returns, for every
output O (each partitioning's name, and "hierarchy" for f* when there are two or more):
  O_lat, O_lon             float64 [batch]   Class2GPS coordinate of the predicted cell (degrees)
  O_class                  int64 [batch]     predicted class
  O_probability            float32 [batch]   its probability (f*: renormalised product)
  O_top_classes            int64 [batch, k]
  O_top_probabilities      float32 [batch, k]
  O_top_cells              string [batch, k] S2 cell tokens, best first
plus `lat`, `lon` of the main output (f*, else the only partitioning). Decoding, the three crops
(uint8, the same function as the evaluation pipeline), the network, the softmax mean, the
hierarchy and top-k (`Locator.device_model`) and Class2GPS are graph ops, so
`tf.saved_model.load(path)` and TF Serving need nothing from geoest.
"""
import pathlib

from geoest.errors import InputError
from geoest.inference.core import Locator


def serving_function(model, locator: Locator, image_size: int, top_k: int = 5):
    """A tf.function: image_bytes string [B] -> dict of tensors (see the module docstring)."""
    import tensorflow as tf

    from geoest.data.pipeline import three_crops

    device = locator.device_model(model, top_k)

    def decode_three_crops(image_bytes):   # the decoding of pipeline.image_dataset, then §3.4's crops
        return three_crops(tf.io.decode_image(image_bytes, channels=3, expand_animations=False), image_size)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        crops = tf.map_fn(decode_three_crops, image_bytes,
                          fn_output_signature=tf.TensorSpec([3, image_size, image_size, 3], tf.uint8))
        located = locator.class2gps_tf(device(crops, training=False))
        outputs = {f"{name}_{key}": value for name, result in located.items() for key, value in result.items()}
        outputs["lat"] = located[locator.main]["lat"]
        outputs["lon"] = located[locator.main]["lon"]
        return outputs

    return serve


def export_saved_model(geo_model, export_dir, *, image_size: int | None = None, top_k: int = 5,
                       centers: str = "mean") -> pathlib.Path:
    """Write a SavedModel of a trained model (`geoest.inference.modeldir.GeoModel`).

    Args:
      geo_model: the model and its partitionings.
      export_dir: target folder (must not exist, or be empty).
      image_size: crop size S; default the model's input size.
      top_k: cells returned per output.
      centers: Class2GPS "mean" (§3.4) or "geometric" (base-vgg_c).
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
    archive.add_endpoint("serve", serving_function(geo_model.model, locator, image_size, top_k))
    archive.write_out(str(export_dir), verbose=False)
    return export_dir
