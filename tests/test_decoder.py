"""geoest.data.decoder: scene labels at every level, the ISN filter (§4), as the training and
evaluation pipelines read them."""
import numpy as np
import pytest

from data_helpers import jpeg_bytes, random_points
from geoest.data import pipeline, records
from geoest.data.skip_log import BELOW_TAU_S, NO_SCENE, SkipLog
from geoest.scene.places365 import CONCEPTS
from test_pipeline import SIZE, _write, whole_world  # noqa: F401  (a fixture)


def _scene_records(path, n, probs3=None, probs365_from=None):
    """Record i carries a one-hot S365 at i, so the S365 label names the record."""
    lat, lon = random_points(n, seed=5)
    image = jpeg_bytes(36, 40)
    return _write(path, [records.encode_example(
        image, f"img{i}", lat[i], lon[i], probs365=np.eye(365)[i] if probs365_from is None
        else probs365_from[i], probs3=None if probs3 is None else probs3[i]) for i in range(n)])


@pytest.mark.parametrize("concept", ["indoor", "urban"])
def test_isn_filter_keeps_exactly_the_photos_above_tau_s(tmp_path, whole_world, concept):
    n = 200
    probs3 = np.random.default_rng(6).dirichlet(np.ones(3), n).astype(np.float32)
    probs3[:4, 2] = [0.3, 0.30001, 0.29999, 0.31]          # at the threshold
    probs3[:4, 0] = [0.3, 0.30001, 0.29999, 0.31]
    path = _scene_records(tmp_path / "scene.tfrecord", n, probs3=probs3)
    log = SkipLog()
    ds = pipeline.train_dataset(path, [whole_world], 8, image_size=SIZE, scene_level="S365",
                                concept=concept, tau_s=0.3, shuffle_buffer=0,
                                deterministic=True, repeat=False, skip_log=log)
    kept = np.concatenate([labels["scene"].numpy() for _, labels in ds])
    above = np.flatnonzero(probs3[:, CONCEPTS.index(concept)] > np.float32(0.3))
    assert kept.tolist() == above.tolist()
    assert log.counts == {BELOW_TAU_S: n - len(above)}


def test_isn_filter_derives_probs3_from_probs365(tmp_path, whole_world):
    rng = np.random.default_rng(7)
    s3_matrix = rng.random((365, 3)).astype(np.float32)
    s3_matrix /= s3_matrix.sum(axis=1, keepdims=True)
    s16_matrix = rng.random((365, 16)).astype(np.float32)
    s16_matrix /= s16_matrix.sum(axis=1, keepdims=True)
    probs365 = rng.dirichlet(np.full(365, 0.05), 120).astype(np.float32)
    path = _scene_records(tmp_path / "scene.tfrecord", 120, probs365_from=probs365)
    matrices = {"S3": s3_matrix, "S16": s16_matrix}
    ds = pipeline.train_dataset(path, [whole_world], 8, image_size=SIZE, scene_level="S16",
                                concept="natural", scene_matrices=matrices, shuffle_buffer=0,
                                deterministic=True, repeat=False)
    kept = np.concatenate([labels["scene"].numpy() for _, labels in ds])
    above = (probs365 @ s3_matrix)[:, 1] > 0.3
    assert 0 < above.sum() < len(above)
    np.testing.assert_array_equal(kept, np.argmax(probs365 @ s16_matrix, axis=1)[above])


def test_mtn_scene_targets_from_hard_labels_at_any_level(tmp_path, whole_world):
    """The published meta's S16_Label / S365_Label train an MTN without probabilities or the Places365
    hierarchy; a stored label wins over probabilities; photos with neither are dropped and counted."""
    n = 40
    lat, lon = random_points(n, seed=9)
    rng = np.random.default_rng(10)
    labels = np.stack([rng.integers(0, 3, n), rng.integers(0, 16, n), rng.integers(0, 365, n)], axis=1)
    labels[:5] = -1                                     # no labels: dropped at S16
    probs3 = np.tile(np.float32([0.1, 0.2, 0.7]), (n, 1))
    path = _write(tmp_path / "labels.tfrecord", [records.encode_example(
        jpeg_bytes(36, 40), f"img{i}", lat[i], lon[i], probs3=probs3[i], scene_labels=labels[i]) for i in range(n)])
    for level, column in (("S3", 0), ("S16", 1), ("S365", 2)):
        log = SkipLog()
        ds = pipeline.train_dataset(path, [whole_world], 8, image_size=SIZE, scene_level=level, shuffle_buffer=0,
                                    deterministic=True, repeat=False, skip_log=log)
        kept = np.concatenate([targets["scene"].numpy() for _, targets in ds])
        # S3 falls back on the probabilities (urban, 2) where no label is stored.
        expected = np.where(labels[:, column] >= 0, labels[:, column], 2) if level == "S3" else labels[5:, column]
        np.testing.assert_array_equal(kept, expected)
        assert log.counts == ({} if level == "S3" else {NO_SCENE: 5})
    evaluated = np.concatenate([b["scene_labels"] for b in pipeline.eval_dataset(path, 16, image_size=SIZE)
                                .as_numpy_iterator()])
    np.testing.assert_array_equal(evaluated[5:], labels[5:])
    np.testing.assert_array_equal(evaluated[:5], [[2, -1, -1]] * 5)
