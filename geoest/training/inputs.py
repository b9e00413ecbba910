"""Input functions of the trainer: TFRecords (§4) or synthetic images (tests, smoke runs, benchmarks).

An input function is called as `fn(partitionings, batch_size, image_size, scene_level)` and returns
`Inputs`; gin picks it (`train.inputs = @tfrecord_inputs`), so the demo and tests can swap it.
  train:      (images uint8 [B, S, S, 3], {partitioning name: int64 [B], "scene": int64 [B]})
              repeated; B is the global batch.
  train_once: the same, one pass (finite): to check there are any images.
  count:      () -> int, the images of one pass (an epoch), counted without decoding a photo where it can.
  validation: (crops uint8 [B, 3, S, S, 3], the same labels plus "lat" and "lon" (float, degrees)):
              the three crops of evaluation (§3.4), labelled by the training parser; finite; or None.
  position:   a `geoest.data.position.DataPosition` tracking where `train` is (checkpointed, so a
              resumed run continues there), or None (synthetic data restarts its stream).
  count_skips: filled by `count()`: {reason: records of one pass dropped before decoding}.
A label -1 means "no class" (no cell of that partitioning holds the photo; scene unknown): it adds
nothing to the loss and is left out of top-1 accuracy.
"""
import dataclasses
from typing import Callable, Optional

import gin
import numpy as np
import tensorflow as tf

from geoest.data import pipeline
from geoest.data.decoder import example_labels
from geoest.data.position import DataPosition
from geoest.data.skip_log import SkipLog
from geoest.errors import InputError
from geoest.geo import Partitioning
from geoest.scene.places365 import LEVEL_CLASSES   # §3.2 scene sets: S3, S16, S365
from geoest.scene.places365 import load_scene_hierarchy

LAT, LON = "lat", "lon"


@dataclasses.dataclass
class Inputs:
    train: tf.data.Dataset
    train_once: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    count: Callable[[], int]
    description: str = ""  # names the data in error messages
    position: object = None
    count_skips: dict = dataclasses.field(default_factory=dict)


@gin.configurable
def tfrecord_inputs(partitionings, batch_size, image_size, scene_level, *, train_files=gin.REQUIRED,
                    validation_files=None, scene_hierarchy=None) -> Inputs:
    """§4 training data from TFRecord shards (`tools/build_tfrecords.py`).

    The ISN filter (§3.3: concept probability > tau_S), shuffling and seeds are parameters of
    `train_dataset`, bound in gin (`train_dataset.concept = "urban"`, `train_dataset.tau_s = 0.3`).

    Args:
      partitionings, batch_size, image_size, scene_level: given by the trainer.
      train_files, validation_files: glob patterns of TFRecord shards.
      scene_hierarchy: (scene_hierarchy_places365.csv, categories_places365.txt) paths, needed when
        the records hold 365 scene probabilities and a scene level or a concept is used.
    """
    matrices = None
    if scene_hierarchy is not None:
        matrices = load_scene_hierarchy(*scene_hierarchy)

    position = DataPosition()
    counted = SkipLog()

    def training(repeat, count_only=False):
        return pipeline.train_dataset(train_files, partitionings, batch_size, image_size=image_size,
                                      scene_level=scene_level, scene_matrices=matrices, repeat=repeat,
                                      count_only=count_only, position=position if repeat else None,
                                      skip_log=counted if count_only else None)

    validation = None
    if validation_files:
        evaluation = pipeline.eval_dataset(validation_files, batch_size, image_size=image_size,
                                           partitionings=partitionings, scene_level=scene_level,
                                           scene_matrices=matrices)
        names = [p.name for p in partitionings]
        validation = evaluation.map(lambda example: (example["crops"], {
            **example_labels(example, names, scene_level), LAT: example["lat"], LON: example["lon"]}))
    description = f"TFRecords {train_files!r} (ISN filter: train_dataset.concept / tau_s)"
    inputs = Inputs(training(repeat=True), training(repeat=False), validation, None, description, position)

    def count():
        counted.counts.clear()
        images = training(repeat=False, count_only=True)
        inputs.count_skips = dict(counted.counts)
        return images

    inputs.count = count
    return inputs


@gin.configurable
def synthetic_partitioning(name: str = "synthetic", tau_max: int = 100, tau_min: int = 5,
                           num_photos: int = 4000, seed: int = 0):
    """§3.1 on generated photo coordinates (clustered around eight cities): a partitioning that needs
    no file, for smoke runs (`smoke.gin`). The same arguments give the same cells.

    Returns:
      `geoest.geo.Partitioning` named `name`.
    """
    rng = np.random.default_rng(seed)
    cities = np.array([[48.86, 2.35], [40.71, -74.0], [35.68, 139.69], [-33.87, 151.21],
                       [-22.91, -43.17], [30.04, 31.24], [55.75, 37.62], [1.35, 103.82]])
    city = rng.integers(len(cities), size=num_photos)
    spread = rng.choice([0.05, 0.5, 3.0], size=num_photos, p=[0.5, 0.35, 0.15])
    lat = np.clip(cities[city, 0] + rng.normal(size=num_photos) * spread, -89.0, 89.0)
    lon = (cities[city, 1] + rng.normal(size=num_photos) * spread + 180.0) % 360.0 - 180.0
    return Partitioning.build(lat, lon, tau_min=tau_min, tau_max=tau_max, name=name)


@gin.configurable
def synthetic_inputs(partitionings, batch_size, image_size, scene_level, *, num_images=256,
                     num_validation=64, seed=0) -> Inputs:
    """A small learnable dataset: photos at real cell centres whose colours encode lat and lon.

    Each image is a constant colour (lat/90, lon/180, lat*lon/16200 in [-1, 1], stored as uint8)
    plus noise, so a tiny network can learn where it was taken; the scene label is the finest
    class modulo the number of scenes.
    """
    rng = np.random.default_rng(seed)
    finest = partitionings[-1]
    cells = rng.integers(0, len(finest), num_images + num_validation)
    lat = finest.centers[cells, 0].astype(np.float32)
    lon = finest.centers[cells, 1].astype(np.float32)
    labels = {p.name: p.assign(lat, lon) for p in partitionings}
    if scene_level:
        labels["scene"] = labels[finest.name] % LEVEL_CLASSES[scene_level]

    def make(index, shuffle, repeat=True):
        data = tf.data.Dataset.from_tensor_slices(({k: v[index] for k, v in labels.items()},
                                                   lat[index], lon[index]))
        if shuffle:
            data = data.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
            data = data.repeat() if repeat else data

        def to_pair(target, lat_deg, lon_deg):
            colour = tf.stack([lat_deg / 90.0, lon_deg / 180.0, lat_deg * lon_deg / 16200.0])
            noise = tf.random.stateless_normal([image_size, image_size, 3],
                                               seed=tf.cast(tf.stack([lat_deg * 1e3, lon_deg * 1e3]), tf.int64),
                                               stddev=0.1)
            images = tf.cast(tf.round((tf.clip_by_value(colour + noise, -1.0, 1.0) + 1.0) * 127.5), tf.uint8)
            if shuffle:
                return images, target
            # A square photo's three crops (§3.4) are the photo itself.
            return tf.stack([images] * 3), {**target, LAT: lat_deg, LON: lon_deg}

        return data.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE).batch(
            batch_size, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)

    train, once = (make(np.arange(num_images), shuffle=True, repeat=r) for r in (True, False))
    validation = make(np.arange(num_images, num_images + num_validation), shuffle=False) if num_validation else None
    return Inputs(train, once, validation, lambda: num_images, f"synthetic ({num_images} images)")


def require_images(inputs: Inputs) -> None:
    """Raises InputError when the training data holds no image (e.g. nothing passes the ISN filter)."""
    if not list(inputs.train_once.take(1).as_numpy_iterator()):
        raise InputError(f"training data {inputs.description or '(unnamed)'} holds zero images after "
                         "filtering; check the file pattern, the concept and tau_S")
