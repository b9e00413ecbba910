"""geoest.models.geo_model: heads named after partitionings, output shapes and dtypes, saving, the real ResNet-101."""
import numpy as np
import pytest

import keras

from geoest.errors import InputError
from geoest.models import SCENE_HEAD, build_model, output_sizes


def _images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_heads_are_named_after_partitionings_and_output_logits():
    model = build_model({"coarse": 5, "fine": 9}, backbone="tiny", image_size=32, scene_classes=3)
    assert output_sizes(model) == {"coarse": 5, "fine": 9, SCENE_HEAD: 3}
    assert model.inputs[0].dtype == "uint8"
    out = model(_images((2, 32, 32, 3)))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"coarse": (2, 5), "fine": (2, 9), SCENE_HEAD: (2, 3)}
    # Logits, not probabilities: rows do not sum to one in general.
    assert not np.allclose(np.sum(np.asarray(out["fine"]), axis=-1), 1.0)


@pytest.mark.parametrize("head_dtype, head_compute", [(None, "float16"), ("float32", "float32")])
def test_logits_are_float32_under_mixed_precision(head_dtype, head_compute):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model({"fine": 7}, backbone="tiny", image_size=32, head_dtype=head_dtype)
        out = model(np.zeros((1, 32, 32, 3), "uint8"))
        assert keras.backend.standardize_dtype(out["fine"].dtype) == "float32"
        assert model.get_layer("fine").compute_dtype == head_compute
        assert model.get_layer("tiny_conv1").compute_dtype == "float16"
        assert model.get_layer("scale_images").compute_dtype == "float16"   # uint8 scaled in float16
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("kwargs, words", [
    ({"backbone": "resnet9000"}, ["resnet9000", "resnet101v2"]),
    ({"backbone": "resnet50v2", "weights": "/nonexistent/weights.h5"}, ["/nonexistent/weights.h5"]),
    ({"backbone": "tiny", "weights": "imagenet"}, ["tiny"]),
])
def test_bad_backbone_arguments_raise_input_error(kwargs, words):
    with pytest.raises(InputError) as error:
        build_model({"fine": 3}, image_size=32, **kwargs)
    assert all(word in str(error.value) for word in words)


def test_partitioning_named_scene_is_refused():
    with pytest.raises(InputError, match="scene"):
        build_model({SCENE_HEAD: 3}, backbone="tiny", image_size=32)


def test_saved_model_file_reloads_with_the_same_predictions(tmp_path):
    model = build_model({"a": 4, "b": 6}, backbone="tiny", image_size=32, scene_classes=16)
    images = _images((3, 32, 32, 3), seed=1)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert output_sizes(loaded) == output_sizes(model)
    for name, value in model(images).items():
        np.testing.assert_allclose(np.asarray(loaded(images)[name]), np.asarray(value), rtol=1e-5, atol=1e-5)


def test_real_resnet101_has_the_paper_heads(mp16_dir):
    from geoest.geo import read_partitionings

    parts = read_partitionings([mp16_dir / f"cells_50_{t}.csv" for t in (5000, 2000, 1000)])
    model = build_model(parts, backbone="resnet101v2", image_size=224, weights=None)
    # Table 1: 3,298 / 7,202 / 12,893 cells; 2048 pooled ResNet-101 features under each head.
    assert output_sizes(model) == {"cells_50_5000": 3298, "cells_50_2000": 7202, "cells_50_1000": 12893}
    assert model.get_layer("cells_50_1000").kernel.shape == (2048, 12893)
    assert model.input_shape == (None, 224, 224, 3)
    assert len([layer for layer in model.get_layer("resnet101v2").layers if isinstance(layer, keras.layers.Conv2D)]) == 104


def test_a_model_taking_float_images_is_refused(tmp_path):
    from geoest.inference.modeldir import load_geo_model
    from geoest.models import require_uint8_images

    # A model as geoest saved it before the uint8 convention: float32 images in [-1, 1] in.
    images = keras.Input((32, 32, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(images))
    old = keras.Model(images, {"cells": keras.layers.Dense(3, name="cells")(features)})
    old.save(tmp_path / "best.keras")
    with pytest.raises(InputError, match="float32 images") as error:
        require_uint8_images(old, tmp_path / "best.keras")
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match="best.keras takes float32 images"):
        load_geo_model(tmp_path)
