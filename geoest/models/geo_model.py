"""§3.3: one network, one classification head per partitioning, plus a scene head for the MTN.

Baseline: one fully-connected layer on the global pooling layer, |C| outputs. Multi-partitioning:
one such layer per partitioning in P. MTN: one more layer with |S| scene outputs, all other
weights shared. Heads output logits; losses take `from_logits=True`, and evaluation, prediction
and export apply the softmax (`geoest.models.inference_model`).

Input: uint8 RGB images [batch, S, S, 3] in [0, 255]; the backbone's first layer scales them
(`geoest.models.backbones.ScaleImages`). Models saved before this convention took float32 images
in [-1, 1]; `require_uint8_images` refuses them.

Mixed precision: the heads' matrix products run in the compute dtype (float16 / bfloat16, the
accelerator's fast path: the 23,393 classes of the three MP-16 heads are 96 MFLOP per image) and
return float32 logits, so the softmax, the losses and §3.4's products are float32.
`build_model.head_dtype = "float32"` keeps the whole heads in float32.
"""
from collections.abc import Mapping, Sequence

import gin
import keras

from geoest.errors import InputError
from geoest.heads import SCENE_HEAD
from geoest.models.backbones import BACKBONES


def head_sizes(partitionings) -> dict[str, int]:
    """{name: number of classes} from Partitioning objects or an already given {name: n} mapping."""
    if isinstance(partitionings, Mapping):
        return {str(name): int(n) for name, n in partitionings.items()}
    return {p.name: len(p) for p in partitionings}


IMAGE_DTYPE = "uint8"


@keras.saving.register_keras_serializable(package="geoest")
class Logits(keras.layers.Dense):
    """A classification head: a fully-connected layer in the compute dtype, float32 logits out."""

    def call(self, inputs):
        return keras.ops.cast(super().call(inputs), "float32")

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape[:-1]) + (self.units,), dtype="float32")


@gin.configurable
def build_model(partitionings: Sequence | Mapping[str, int], backbone: str = "resnet101v2",
                image_size: int = 224, scene_classes: int | None = None,
                weights: str | None = None, head_dtype: str | None = None) -> keras.Model:
    """Builds the multi-output geolocation network.

    Args:
      partitionings: the `geoest.geo.Partitioning`s to classify (coarse to fine), or {name: n_cells}.
      backbone: a key of `BACKBONES`.
      image_size: S of the square input, uint8 [batch, S, S, 3] in [0, 255].
      scene_classes: |S| of the MTN scene head (3, 16 or 365), None for no scene head.
      weights: None (random), "imagenet" (downloaded by keras into ~/.keras) or a local weights file.
      head_dtype: None (the global policy's compute dtype) or "float32" for the heads.

    Returns:
      A functional `keras.Model` whose outputs are a dict {partitioning name: logits [batch, n_cells],
      "scene": logits [batch, scene_classes]} (the scene entry only for an MTN).
    """
    sizes = head_sizes(partitionings)
    if not sizes:
        raise InputError("build_model: no partitionings given; expected at least one")
    if SCENE_HEAD in sizes:
        raise InputError(f"build_model: a partitioning may not be named {SCENE_HEAD!r} (the scene head's name)")
    if backbone not in BACKBONES:
        raise InputError(f"build_model: unknown backbone {backbone!r}; expected one of {sorted(BACKBONES)}")
    images = keras.Input((image_size, image_size, 3), dtype=IMAGE_DTYPE, name="image")
    features = BACKBONES[backbone](images, weights=weights)
    # §3.3: a fully-connected layer on top of the global pooling layer for every partitioning.
    outputs = {name: Logits(n, dtype=head_dtype, name=name)(features) for name, n in sizes.items()}
    if scene_classes:
        # §3.3 MTN: an additional fully-connected layer with |S| outputs; all other weights shared.
        outputs[SCENE_HEAD] = Logits(scene_classes, dtype=head_dtype, name=SCENE_HEAD)(features)
    return keras.Model(images, outputs, name=f"geo_{backbone}")


def require_uint8_images(model: keras.Model, source) -> None:
    """Raises InputError when `model` (loaded from `source`) does not take uint8 images.

    Models saved by geoest before the uint8 convention took float32 images in [-1, 1]; feeding
    them uint8 [0, 255] would silently give wrong answers.
    """
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    if dtype != IMAGE_DTYPE:
        raise InputError(f"model {source} takes {dtype} images: it was saved by an older geoest whose models took "
                         f"float32 images in [-1, 1]; this one feeds uint8 [0, 255] images and scales them inside "
                         f"the model. Retrain it (its checkpoints' weights fit: train.init_from=<its model dir>).")
