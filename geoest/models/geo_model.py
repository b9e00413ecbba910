"""§3.3: one network, one classification head per partitioning, plus a scene head for the MTN.

Baseline: one fully-connected layer on the global pooling layer, |C| outputs. Multi-partitioning:
one such layer per partitioning in P. MTN: one more layer with |S| scene outputs, all other
weights shared. Heads output logits (float32 also under mixed precision); losses take
`from_logits=True`, and evaluation, prediction and export apply the softmax.
"""
from collections.abc import Mapping, Sequence

import gin
import keras

from geoest.errors import InputError
from geoest.models.backbones import BACKBONES
from geoest.scene.places365 import LEVEL_CLASSES as SCENE_CLASSES   # §3.2 scene sets: S3, S16, S365

SCENE_HEAD = "scene"


def head_sizes(partitionings) -> dict[str, int]:
    """{name: number of classes} from Partitioning objects or an already given {name: n} mapping."""
    if isinstance(partitionings, Mapping):
        return {str(name): int(n) for name, n in partitionings.items()}
    return {p.name: len(p) for p in partitionings}


@gin.configurable
def build_model(partitionings: Sequence | Mapping[str, int], backbone: str = "resnet101v2",
                image_size: int = 224, scene_classes: int | None = None,
                weights: str | None = None) -> keras.Model:
    """Builds the multi-output geolocation network.

    Args:
      partitionings: the `geoest.geo.Partitioning`s to classify (coarse to fine), or {name: n_cells}.
      backbone: a key of `BACKBONES`.
      image_size: S of the square input [batch, S, S, 3], float32 in [-1, 1].
      scene_classes: |S| of the MTN scene head (3, 16 or 365), None for no scene head.
      weights: None (random), "imagenet" (downloaded by keras into ~/.keras) or a local weights file.

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
    images = keras.Input((image_size, image_size, 3), name="image")
    features = BACKBONES[backbone](images, weights=weights)
    # §3.3: a fully-connected layer on top of the global pooling layer for every partitioning.
    outputs = {name: keras.layers.Dense(n, dtype="float32", name=name)(features) for name, n in sizes.items()}
    if scene_classes:
        # §3.3 MTN: an additional fully-connected layer with |S| outputs; all other weights shared.
        outputs[SCENE_HEAD] = keras.layers.Dense(scene_classes, dtype="float32", name=SCENE_HEAD)(features)
    return keras.Model(images, outputs, name=f"geo_{backbone}")


def output_sizes(model: keras.Model) -> dict[str, int]:
    """{output name: number of classes} of a model built by `build_model`."""
    return {name: int(tensor.shape[-1]) for name, tensor in zip(model.output_names, model.outputs)}
