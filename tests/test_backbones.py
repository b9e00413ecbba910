"""geoest.models.backbones: the registry, each backbone's image scaling, local weights, VGG16's fc6/fc7."""
import keras
import numpy as np
import pytest

from geoest.errors import InputError
from geoest.models import BACKBONES, build_model
from geoest.models.backbones import ScaleImages


def _images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_registry_has_paper_and_modern_backbones():
    assert {"resnet50v2", "resnet101v2", "resnet152v2", "vgg16", "efficientnetv2s", "convnext_tiny", "tiny"} <= set(BACKBONES)


def test_image_scaling_matches_each_backbones_convention():
    images = _images((2, 8, 8, 3))
    as_float = images.astype("float32")
    np.testing.assert_allclose(np.asarray(ScaleImages("caffe")(images)),
                               keras.applications.vgg16.preprocess_input(as_float.copy()), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(np.asarray(ScaleImages("symmetric")(images)), as_float / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(ScaleImages("raw")(images)), as_float)
    with pytest.raises(InputError, match="bgr"):
        ScaleImages("bgr")


@pytest.mark.parametrize("backbone", ["vgg16", "convnext_tiny"])
def test_other_backbones_build_on_small_inputs(backbone):
    model = build_model({"fine": 4}, backbone=backbone, image_size=32)
    out = model(np.zeros((1, 32, 32, 3), "uint8"))
    assert tuple(out["fine"].shape) == (1, 4)


def test_backbone_weights_from_a_local_file(tmp_path):
    # the include_top VGG16's file (ImageNet's is vgg16_weights_tf_dim_ordering_tf_kernels.h5), fc6 / fc7 kept
    source = keras.applications.VGG16(include_top=True, weights=None, input_shape=(32, 32, 3))
    source.save_weights(tmp_path / "vgg16.weights.h5")
    model = build_model({"m": 5}, backbone="vgg16", image_size=32, weights=str(tmp_path / "vgg16.weights.h5"))
    for layer in ("block1_conv1", "fc1", "fc2"):
        np.testing.assert_array_equal(np.asarray(model.get_layer("vgg16").get_layer(layer).kernel),
                                      np.asarray(source.get_layer(layer).kernel))


def test_vgg16_keeps_fc6_and_fc7_as_in_im2gps():
    # §4.4 base-vgg(L, m): VGG16 "used in the Im2GPS approach": 13 convolutions, fc6 and fc7 of 4,096
    # (Keras' fc1 / fc2) under the head; ImageNet's 1000-way classifier dropped.
    model = build_model({"cells_50_2000": 7}, backbone="vgg16", image_size=32, weights=None)
    vgg = model.get_layer("vgg16")
    dense = [layer for layer in vgg.layers if isinstance(layer, keras.layers.Dense)]
    assert [(d.name, d.units, d.activation.__name__) for d in dense] == [("fc1", 4096, "relu"), ("fc2", 4096, "relu")]
    assert len([layer for layer in vgg.layers if isinstance(layer, keras.layers.Conv2D)]) == 13
    assert vgg.output.shape == (None, 4096)
    assert model.get_layer("cells_50_2000").kernel.shape == (4096, 7)
