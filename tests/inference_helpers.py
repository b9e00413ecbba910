"""Tiny real inputs for the inference tests: clustered photo coordinates, three nested
partitionings built from them, small Keras models with one logits head per partitioning, and
JPEG / PNG files drawn with numpy."""
import io

import numpy as np

CITIES = np.array([[48.86, 2.35], [40.71, -74.0], [35.68, 139.69], [-33.87, 151.21],
                   [-22.91, -43.17], [30.04, 31.24], [55.75, 37.62], [64.1, -21.9]])


def clustered_points(n: int = 3000, seed: int = 0):
    """Photo-like coordinates: dense around a few cities on every continent, a few scattered."""
    rng = np.random.default_rng(seed)
    city = rng.integers(len(CITIES), size=n)
    spread = rng.choice([0.05, 0.5, 3.0], size=n, p=[0.5, 0.35, 0.15])
    lat = np.clip(CITIES[city, 0] + rng.normal(size=n) * spread, -89, 89)
    lon = (CITIES[city, 1] + rng.normal(size=n) * spread + 180) % 360 - 180
    return lat, lon


def partitionings(n: int = 3000, seed: int = 0):
    """Coarse, middle and fine partitionings of `clustered_points` (tau_min 5; tau_max 400/150/50)."""
    from geoest.geo import Partitioning

    lat, lon = clustered_points(n, seed)
    return [Partitioning.build(lat, lon, tau_min=5, tau_max=t, name=name)
            for t, name in ((400, "coarse"), (150, "middle"), (50, "fine"))]


def tiny_model(sizes: dict, image_size: int = 32, seed: int = 0, scene_classes: int | None = None):
    """A small functional model: uint8 images [B, S, S, 3] -> {name: logits [B, n]} (+ "scene")."""
    import keras

    from geoest.models.backbones import SYMMETRIC, scale_images

    keras.utils.set_random_seed(seed)
    images = keras.Input((image_size, image_size, 3), dtype="uint8")
    scaled = scale_images(images, SYMMETRIC)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(scaled)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(scaled))])
    outputs = {name: keras.layers.Dense(n, name=name, kernel_initializer=keras.initializers.RandomNormal(
        stddev=3.0))(x) for name, n in sizes.items()}
    if scene_classes:
        outputs["scene"] = keras.layers.Dense(scene_classes, name="scene")(x)
    return keras.Model(images, outputs)


def constant_model(sizes: dict, winners: dict, image_size: int = 32):
    """A model whose logits ignore the image: output `name` peaks (logit 10) at class winners[name]."""
    import keras

    from geoest.models.backbones import SYMMETRIC, scale_images

    images = keras.Input((image_size, image_size, 3), dtype="uint8")
    x = keras.layers.GlobalAveragePooling2D()(scale_images(images, SYMMETRIC))
    outputs = {}
    for name, n in sizes.items():
        bias = np.zeros(n, np.float32)
        bias[winners[name]] = 10.0
        outputs[name] = keras.layers.Dense(n, name=name, kernel_initializer="zeros",
                                           bias_initializer=keras.initializers.Constant(bias))(x)
    return keras.Model(images, outputs)


def image_bytes(height: int, width: int, seed: int = 0, fmt: str = "JPEG") -> bytes:
    """An encoded image of smooth random colour blobs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((width, height), Image.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


def sharp_geo_model(parts, image_size: int = 32):
    """`geoest.models.build_model` with the tiny backbone and sharpened heads, so that the top
    cells are well separated (no near-ties between runs or batch sizes)."""
    from geoest.models import build_model

    model = build_model(parts, backbone="tiny", image_size=image_size)
    for p in parts:
        kernel, bias = model.get_layer(p.name).get_weights()
        model.get_layer(p.name).set_weights([kernel * 20, np.random.default_rng(0).normal(size=bias.shape) * 3])
    return model


def save_model_dir(model, parts, model_dir):
    """The layout `python -m geoest.train` leaves: best.keras and partitionings/<name>.csv."""
    (model_dir / "partitionings").mkdir(parents=True)
    model.save(model_dir / "best.keras")
    for p in parts:
        p.to_csv(model_dir / "partitionings" / f"{p.name}.csv")


def calibrated_model_dir(parts, model_dir, image_size: int = 32) -> str:
    """A model dir of `tiny_model` with temperatures per head and f* (calibration.json); returns the
    model file's fingerprint."""
    from geoest.inference.calibration import Calibration, model_fingerprint

    save_model_dir(tiny_model({p.name: len(p) for p in parts}, image_size), parts, model_dir)
    fingerprint = model_fingerprint(model_dir / "best.keras")
    Calibration({"coarse": 1.3, "middle": 0.8, "fine": 2.0, "hierarchy": 1.7}, fingerprint,
                {p.name: len(p) for p in parts}).save(model_dir)
    return fingerprint


# The start of a script that serves an exported SavedModel from plain TensorFlow: importing geoest fails.
SERVE_WITHOUT_GEOEST = """
import importlib.abc, json, sys
class NoGeoest(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "geoest":
            raise ImportError("the served model must not need geoest")
sys.meta_path.insert(0, NoGeoest())
import numpy as np
import tensorflow as tf
"""
