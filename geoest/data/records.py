"""The TFRecord schema: the one place that names the feature keys (design.md, "TFRecord example").

A record holds a photo and where it was taken, never a geo-cell label: labels for any
partitioning are computed from latitude/longitude inside the input pipeline (§3.1), so a
new partitioning needs no new records. Scene probabilities (§3.2) are stored as the 365
Places365 probabilities when known, else as the 3 S3 concept probabilities; the hard scene
labels of the published meta files (S3_Label, S16_Label, S365_Label) are stored when known,
so an MTN trains at any scene level without probabilities.

Decoding (`parse_example`) turns serialized bytes into a dict of tensors keyed by the names
below; parsing for one configuration (labels, filters) lives in `geoest.data.decoder`, crops in
`geoest.data.crops`.
"""
import numpy as np
import tensorflow as tf

from geoest.errors import InputError

IMAGE_ENCODED = "image/encoded"      # JPEG bytes, shorter side 320 px by default
IMAGE_ID = "image/id"                # bytes, the IMG_ID of the meta CSV (may contain sub-folders)
LATITUDE = "image/latitude"          # float, degrees
LONGITUDE = "image/longitude"        # float, degrees
SCENE_PROBS365 = "scene/probs365"    # 365 floats, Places365 probabilities (§3.2), when known
SCENE_PROBS3 = "scene/probs3"        # 3 floats, S3 probabilities (indoor, natural, urban)
SCENE_LABELS = {"S3": "scene/label_s3", "S16": "scene/label_s16",   # int, the scene label of each
                "S365": "scene/label_s365"}                         # level (§3.2), when known

NUM_S365 = 365
NUM_S3 = 3


def _float_feature(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _probabilities(values, size: int, name: str, image_id: str) -> list[float]:
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise InputError(f"image {image_id!r}: {name} must be {size} finite numbers, "
                         f"got {array.shape[0]} values {array[:5].tolist()}...")
    return array.tolist()


def encode_example(image_bytes: bytes, image_id: str, lat: float, lon: float,
                   probs365=None, probs3=None, scene_labels=None) -> bytes:
    """Serializes one photo as a `tf.train.Example`.

    Args:
      image_bytes: the encoded JPEG.
      image_id: the photo's IMG_ID (str or bytes).
      lat, lon: where it was taken, degrees.
      probs365: optional 365 Places365 probabilities.
      probs3: optional 3 S3 probabilities (indoor, natural, urban).
      scene_labels: optional S3, S16 and S365 labels (3 ints; -1 for an unknown one).

    Returns:
      The serialized example (bytes).
    """
    image_id_bytes = image_id if isinstance(image_id, bytes) else str(image_id).encode("utf-8")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise InputError(f"image {image_id!r}: latitude {lat} / longitude {lon} out of range; "
                         "expected degrees in [-90, 90] and [-180, 180]")
    feature = {
        IMAGE_ENCODED: _bytes_feature(bytes(image_bytes)),
        IMAGE_ID: _bytes_feature(image_id_bytes),
        LATITUDE: _float_feature([float(lat)]),
        LONGITUDE: _float_feature([float(lon)]),
    }
    if probs365 is not None:
        feature[SCENE_PROBS365] = _float_feature(
            _probabilities(probs365, NUM_S365, SCENE_PROBS365, image_id))
    if probs3 is not None:
        feature[SCENE_PROBS3] = _float_feature(
            _probabilities(probs3, NUM_S3, SCENE_PROBS3, image_id))
    if scene_labels is not None:
        for (level, key), label in zip(SCENE_LABELS.items(), np.asarray(scene_labels).reshape(-1).tolist()):
            if label >= 0:
                feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


_FEATURES = {
    IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
    IMAGE_ID: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    LATITUDE: tf.io.FixedLenFeature([], tf.float32),
    LONGITUDE: tf.io.FixedLenFeature([], tf.float32),
    # Absent scene probabilities read as NaN: "unknown".
    SCENE_PROBS365: tf.io.FixedLenFeature([NUM_S365], tf.float32,
                                          default_value=[float("nan")] * NUM_S365),
    SCENE_PROBS3: tf.io.FixedLenFeature([NUM_S3], tf.float32,
                                        default_value=[float("nan")] * NUM_S3),
    # Absent scene labels read as -1: "unknown".
    **{key: tf.io.FixedLenFeature([], tf.int64, default_value=-1) for key in SCENE_LABELS.values()},
}


def parse_example(serialized, s3_matrix=None) -> dict:
    """Decodes serialized examples into a dict of tensors keyed by the feature names above.

    Args:
      serialized: tf.string scalar (one example) or [batch] (several).
      s3_matrix: optional float [365, 3] (`SceneHierarchy.s3_matrix`, §3.2). When given,
        records without `scene/probs3` get `probs365 @ s3_matrix`.

    Returns:
      {IMAGE_ENCODED: string, IMAGE_ID: string, LATITUDE: float32, LONGITUDE: float32,
       SCENE_PROBS365: float32 [..., 365], SCENE_PROBS3: float32 [..., 3],
       SCENE_LABELS[level]: int64 for S3, S16, S365}, with a leading batch dimension when
      `serialized` has one. Unknown probabilities are NaN, unknown labels -1; SCENE_PROBS3 is
      always present (stored, else derived from probs365, else NaN).
    """
    serialized = tf.convert_to_tensor(serialized, tf.string)
    if serialized.shape.rank == 0:
        features = tf.io.parse_single_example(serialized, _FEATURES)
    else:
        features = tf.io.parse_example(serialized, _FEATURES)
    if s3_matrix is not None:
        probs365 = features[SCENE_PROBS365]
        derived = tf.linalg.matmul(probs365[..., tf.newaxis, :],
                                   tf.constant(s3_matrix, tf.float32))[..., 0, :]
        stored = features[SCENE_PROBS3]
        has_stored = tf.logical_not(tf.reduce_any(tf.math.is_nan(stored), axis=-1,
                                                  keepdims=True))
        features[SCENE_PROBS3] = tf.where(has_stored, stored, derived)
    return features
