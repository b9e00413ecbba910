"""Serialized records -> labelled examples: parsing (`records.parse_example`), a class per
partitioning (§3.1), the S3 / S16 / S365 scene labels (§3.2), the ISN selection (§4) and the cheap JPEG
check; what is dropped is counted in a `SkipLog`. The training and evaluation pipelines share it."""
import collections.abc

import tensorflow as tf

from geoest.data import records
from geoest.data.photo_checks import jpeg_looks_complete
from geoest.data.skip_log import (BELOW_TAU_S, NO_CELL, NO_SCENE, NOT_JPEG, REASONS, TRUNCATED, SkipLog,
                                  drop_logged)
from geoest.errors import InputError
from geoest.scene.places365 import CONCEPTS     # S3 order (§3.2)
from geoest.scene.places365 import LEVELS as SCENE_LEVELS
from geoest.scene.places365 import scene_label_tf
from geoest.scene.statistics import TAU_S             # §4: ISN training images have p(concept) > 0.3


def _matrix(scene_matrices, level: str):
    """`SceneHierarchy.s3_matrix` / `.s16_matrix`, or scene_matrices["S3"] / ["S16"]."""
    if scene_matrices is None:
        return None
    if isinstance(scene_matrices, collections.abc.Mapping):
        return scene_matrices.get(level)
    return getattr(scene_matrices, f"{level.lower()}_matrix", None)


def check_scene_args(scene_level, concept, tau_s, scene_matrices):
    """Raises InputError for a scene level, concept or tau_S the pipelines do not know."""
    if scene_level is not None and scene_level not in SCENE_LEVELS:
        raise InputError(f"scene_level {scene_level!r}: expected one of {list(SCENE_LEVELS)}")
    if concept is not None and concept not in CONCEPTS:
        raise InputError(f"concept {concept!r}: expected one of {CONCEPTS}")
    if not 0.0 <= tau_s < 1.0:
        raise InputError(f"tau_s {tau_s}: expected a probability in [0, 1)")


def _scene_labels(features, probs3, scene_matrices):
    """§3.2: int64 [batch, 3], the S3, S16 and S365 label of each record: its stored label (the
    published meta's S*_Label), else the argmax of its probabilities at that level (`scene_label_tf`;
    S16 needs the hierarchy's S16 matrix), else -1."""
    probs365 = features[records.SCENE_PROBS365]
    derived = {"S3": probs3, "S365": probs365}
    s16_matrix = _matrix(scene_matrices, "S16")
    if s16_matrix is not None:
        derived["S16"] = tf.linalg.matmul(probs365, tf.constant(s16_matrix, tf.float32))
    columns = []
    for level in SCENE_LEVELS:
        stored = features[records.SCENE_LABELS[level]]
        if level in derived:
            stored = tf.where(stored >= 0, stored, scene_label_tf(derived[level]))
        columns.append(stored)
    return tf.stack(columns, axis=1)


def label_batch(serialized, skip_log: SkipLog, partitionings, *, scene_level=None,
                 concept=None, tau_s=TAU_S, scene_matrices=None, drop_unlabelled=True):
    """[batch] serialized examples -> dict of [kept] tensors, with labels; drops are logged.

    Keys: "encoded", "id", "lat", "lon", "probs3", "scene_labels" (int64 [kept, 3], S3 / S16 /
    S365, -1 unknown), one per partitioning name (int64 class), and "scene" (int64, the label at
    scene_level) with a scene_level. Training drops the photos without a label (in no cell, no
    scene label); evaluation (`drop_unlabelled=False`) keeps them with label -1.
    """
    s3_matrix = _matrix(scene_matrices, "S3")
    features = records.parse_example(serialized, s3_matrix=s3_matrix)
    out = {
        "encoded": features[records.IMAGE_ENCODED],
        "id": features[records.IMAGE_ID],
        "lat": features[records.LATITUDE],
        "lon": features[records.LONGITUDE],
        "probs3": features[records.SCENE_PROBS3],
    }
    is_jpeg, has_end = jpeg_looks_complete(out["encoded"])
    reason = tf.where(is_jpeg, tf.where(has_end, -1, REASONS.index(TRUNCATED)),
                      REASONS.index(NOT_JPEG))

    def drop(where, code):
        return tf.where((reason < 0) & where, code, reason)

    for p in partitionings:
        out[p.name] = p.assign_tf(out["lat"], out["lon"])    # §3.1: class of the cell
        if drop_unlabelled:
            reason = drop(out[p.name] < 0, REASONS.index(NO_CELL))
    out["scene_labels"] = _scene_labels(features, out["probs3"], scene_matrices)
    if scene_level is not None:                 # §3.3 MTN: the scene label at its level
        out["scene"] = out["scene_labels"][:, SCENE_LEVELS.index(scene_level)]
        if drop_unlabelled:
            reason = drop(out["scene"] < 0, REASONS.index(NO_SCENE))
    if concept is not None:                     # §4: the ISN filter, p(concept) > tau_S
        p_concept = out["probs3"][:, CONCEPTS.index(concept)]
        reason = drop(tf.math.is_nan(p_concept), REASONS.index(NO_SCENE))
        reason = drop(~(p_concept > tau_s), REASONS.index(BELOW_TAU_S))
    return drop_logged(out, reason, skip_log)


def example_labels(example, names, scene_level=None) -> dict:
    """The targets of one configuration from a labelled example (`label_batch`), for training
    and validation alike: {name: int64 class for name in names} plus "scene" (int64, the label at
    `scene_level`) with a scene_level; -1 where there is none."""
    labels = {name: example[name] for name in names}
    if scene_level is not None:
        labels["scene"] = example["scene"]
    return labels
