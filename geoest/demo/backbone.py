"""A small convolutional backbone for the demo: learns the demo's cues on a CPU in minutes.

Registered as `BACKBONES["demo_cnn"]` on import (gin/demo.gin imports this module). Three
stages of two 3x3 convolutions (the second strided), batch norm and ReLU, then global
average pooling, as in §3.3's "fully-connected layer on top of the global pooling layer".
For the demo only: the paper's results need ResNet-101 (§4).
"""
import keras

from geoest.errors import InputError
from geoest.models.backbones import BACKBONES, SYMMETRIC, scale_images

STAGE_FILTERS = (32, 64, 128)


def demo_cnn(images, weights=None):
    """images uint8 [batch, S, S, 3] in [0, 255] (scaled to [-1, 1] first) -> features [batch, 128]."""
    if weights is not None:
        raise InputError(f"backbone 'demo_cnn' has no pretrained weights; got weights={weights!r}")
    x = scale_images(images, SYMMETRIC)
    for stage, filters in enumerate(STAGE_FILTERS):
        for strides in (2, 1):
            name = f"demo_s{stage + 1}_{'down' if strides == 2 else 'conv'}"
            x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=name)(x)
            x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.GlobalAveragePooling2D(name="demo_pool")(x)


BACKBONES.setdefault("demo_cnn", demo_cnn)
