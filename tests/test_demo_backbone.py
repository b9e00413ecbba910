"""The demo's small CNN: registered by name on import, uint8 images to 128 features, no pretrained
weights to ask for."""
import keras
import numpy as np
import pytest

from geoest.demo import backbone
from geoest.errors import InputError
from geoest.models import BACKBONES, build_model


def test_registered_and_maps_uint8_images_to_pooled_features():
    assert BACKBONES["demo_cnn"] is backbone.demo_cnn
    images = keras.Input((48, 48, 3), dtype="uint8")
    features = keras.Model(images, backbone.demo_cnn(images))
    assert features.output_shape == (None, backbone.STAGE_FILTERS[-1])
    out = features.predict(np.random.default_rng(0).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8), verbose=0)
    assert out.shape == (2, 128) and np.isfinite(out).all() and (out >= 0).all()      # after ReLU and pooling
    strided = [layer for layer in features.layers if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2)]
    assert len(strided) == len(backbone.STAGE_FILTERS)                                  # 48 -> 6 px
    model = build_model({"coarse": 5, "fine": 9}, backbone="demo_cnn", image_size=48)
    assert {name: tuple(t.shape) for name, t in model.output.items()} == {"coarse": (None, 5), "fine": (None, 9)}


def test_has_no_pretrained_weights():
    with pytest.raises(InputError, match="backbone 'demo_cnn' has no pretrained weights; got weights='imagenet'"):
        backbone.demo_cnn(keras.Input((48, 48, 3), dtype="uint8"), weights="imagenet")
