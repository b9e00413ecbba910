"""The TFRecord schema: what is written is what is read."""
import numpy as np
import pytest
import tensorflow as tf

from data_helpers import jpeg_bytes
from geoest.data import records
from geoest.errors import InputError


def _probs(n, seed):
    p = np.random.default_rng(seed).random(n).astype(np.float32)
    return p / p.sum()


def test_written_then_read_equals_input():
    image = jpeg_bytes(40, 50)
    probs365, probs3 = _probs(365, 1), _probs(3, 2)
    serialized = records.encode_example(image, "45/77/3228511372.jpg", 52.38, 9.72,
                                        probs365=probs365, probs3=probs3)
    one = records.parse_example(serialized)
    batch = records.parse_example(tf.constant([serialized, serialized]))
    for features in (one, {k: v[1] for k, v in batch.items()}):
        assert features[records.IMAGE_ENCODED].numpy() == image
        assert features[records.IMAGE_ID].numpy() == b"45/77/3228511372.jpg"
        assert features[records.LATITUDE].numpy() == pytest.approx(52.38, abs=1e-5)
        assert features[records.LONGITUDE].numpy() == pytest.approx(9.72, abs=1e-5)
        np.testing.assert_allclose(features[records.SCENE_PROBS365].numpy(), probs365, rtol=1e-6)
        np.testing.assert_allclose(features[records.SCENE_PROBS3].numpy(), probs3, rtol=1e-6)


def test_unknown_scene_probabilities_read_as_nan():
    features = records.parse_example(records.encode_example(b"x", "a", 0.0, 0.0))
    assert np.isnan(features[records.SCENE_PROBS365].numpy()).all()
    assert np.isnan(features[records.SCENE_PROBS3].numpy()).all()


def test_probs3_derived_from_probs365_unless_stored():
    s3_matrix = np.random.default_rng(3).random((365, 3)).astype(np.float32)
    s3_matrix /= s3_matrix.sum(axis=1, keepdims=True)
    probs365, probs3 = _probs(365, 4), _probs(3, 5)
    derived_only = records.encode_example(b"x", "a", 1.0, 2.0, probs365=probs365)
    both = records.encode_example(b"x", "b", 1.0, 2.0, probs365=probs365, probs3=probs3)
    neither = records.encode_example(b"x", "c", 1.0, 2.0)
    features = records.parse_example(tf.constant([derived_only, both, neither]),
                                     s3_matrix=s3_matrix)
    got = features[records.SCENE_PROBS3].numpy()
    np.testing.assert_allclose(got[0], probs365 @ s3_matrix, rtol=1e-5)
    np.testing.assert_allclose(got[1], probs3, rtol=1e-6)
    assert np.isnan(got[2]).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(probs365=np.ones(364) / 364), "365"),
    (dict(probs3=[0.5, np.nan, 0.5]), "3 finite"),
    (dict(lat=91.0), "latitude"),
    (dict(lon=-181.0), "longitude"),
])
def test_bad_values_are_input_errors(kwargs, message):
    args = dict(image_bytes=b"x", image_id="img_7", lat=0.0, lon=0.0)
    args.update(kwargs)
    with pytest.raises(InputError, match=message) as error:
        records.encode_example(**args)
    assert "img_7" in str(error.value)


def test_scene_labels_round_trip_and_default_to_minus_one():
    from geoest.data import records as rec

    with_labels = rec.encode_example(b"\xff\xd8\xff\xd9", "a.jpg", 1.0, 2.0, scene_labels=[2, 12, -1])
    without = rec.encode_example(b"\xff\xd8\xff\xd9", "b.jpg", 1.0, 2.0)
    parsed = rec.parse_example(tf.constant([with_labels, without]))
    got = [parsed[rec.SCENE_LABELS[level]].numpy().tolist() for level in ("S3", "S16", "S365")]
    assert got == [[2, -1], [12, -1], [-1, -1]]
