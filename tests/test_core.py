"""geoest.inference.core, §3.4: three-crop mean, standard and hierarchical (f*) prediction, Class2GPS,
top-k cells."""
import numpy as np
import pytest
import s2geometry as s2

import inference_helpers as helpers
from geoest.errors import InputError
from geoest.inference import HIERARCHY, Locator, crop_probabilities, top_k


@pytest.fixture(scope="module")
def parts():
    return helpers.partitionings()


def _dirichlet(rng, batch, n):
    return rng.dirichlet(np.full(n, 0.3), size=batch).astype(np.float32)


def _reference_hierarchy(parts, probs):
    """§3.4 by hand: for every fine cell, find its ancestors by S2 containment, multiply."""
    coarse_to_fine = sorted(parts, key=len)
    fine = coarse_to_fine[-1]
    out = np.ones((probs[fine.name].shape[0], len(fine)))
    for j, token in enumerate(fine.tokens):
        fine_cell = s2.S2CellId.FromToken(token)
        for p in coarse_to_fine:
            owners = [k for k, t in enumerate(p.tokens) if s2.S2CellId.FromToken(t).contains(fine_cell)]
            assert len(owners) == 1, (token, p.name)
            out[:, j] *= probs[p.name][:, owners[0]]
    return out / out.sum(axis=1, keepdims=True)


def test_partitionings_are_a_real_hierarchy(parts):
    sizes = [len(p) for p in parts]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] and sizes[0] > 3


def test_hierarchical_prediction_equals_reference(parts):
    rng = np.random.default_rng(1)
    probs = {p.name: _dirichlet(rng, 6, len(p)) for p in parts}
    locator = Locator(parts[::-1])  # any order: sorted coarse to fine inside
    expected = _reference_hierarchy(parts, probs)
    combined = locator.cell_probabilities(probs)
    np.testing.assert_allclose(combined[HIERARCHY], expected, rtol=1e-4, atol=1e-9)
    located = locator.locate(probs, top_k_cells=3)
    np.testing.assert_array_equal(located[HIERARCHY].classes, expected.argmax(axis=1))
    for p in parts:  # standard geo-classification: the argmax of each partitioning
        np.testing.assert_array_equal(located[p.name].classes, probs[p.name].argmax(axis=1))
    # f* is not simply the fine argmax: the coarse levels change some predictions
    assert (located[HIERARCHY].classes != located["fine"].classes).any()


def _logits_model(parts):
    """A Keras model whose input [N, sum of cells] float is its logits, split by partitioning."""
    import keras

    inputs = keras.Input((sum(len(p) for p in parts),))
    outputs, start = {}, 0
    for p in parts:
        outputs[p.name] = inputs[:, start:start + len(p)]
        start += len(p)
    return keras.Model(inputs, outputs)


def test_device_path_equals_numpy_path(parts):
    """§3.4 steps 1-3 as Keras ops in the model (`device_model`) and step 4 in TF (`class2gps_tf`)
    give the numpy path's classes, probabilities and coordinates."""
    rng = np.random.default_rng(2)
    probs = {p.name: _dirichlet(rng, 5, len(p)) for p in parts}
    locator = Locator(parts, centers="mean")
    numpy_result = locator.locate(probs, top_k_cells=4)
    device = locator.device_model(_logits_model(parts), top_k_cells=4, num_crops=1)
    # softmax(log p) = p: one crop per photo whose logits are the log-probabilities.
    logits = np.concatenate([np.log(probs[p.name]) for p in parts], axis=1)[:, np.newaxis]
    on_device = device.predict_on_batch(logits)
    assert sorted(on_device) == sorted(f"{name}/{key}" for name in ["coarse", "middle", "fine", HIERARCHY]
                                       for key in ("top_classes", "top_probabilities"))
    tf_result = locator.class2gps_tf(on_device)
    assert sorted(tf_result) == sorted(numpy_result)
    for name, located in numpy_result.items():
        got = {k: np.asarray(v) for k, v in tf_result[name].items()}
        np.testing.assert_array_equal(got["top_classes"], located.top_classes)
        np.testing.assert_allclose(got["top_probabilities"], located.top_probs, rtol=1e-4)
        np.testing.assert_allclose(got["lat"], located.lat_deg)
        np.testing.assert_allclose(got["lon"], located.lon_deg)
        tokens = locator.partitioning(name).tokens
        assert got["top_cells"][0, 0].decode() == tokens[located.classes[0]]


@pytest.mark.parametrize("centers", ["mean", "geometric"])
def test_class2gps(parts, centers):
    fine = parts[-1]
    classes = np.array([0, 3, len(fine) - 1])
    probs = {p.name: np.full((3, len(p)), 1.0 / len(p), np.float32) for p in parts}
    probs["fine"] = np.eye(len(fine), dtype=np.float32)[classes] * 0.9 + 0.1 / len(fine)
    located = Locator(parts, centers=centers, hierarchy=False).locate(probs)["fine"]
    expected = fine.centers if centers == "mean" else fine.geometric_centers()
    np.testing.assert_allclose(np.stack([located.lat_deg, located.lon_deg], 1), expected[classes])
    # either way the coordinate lies inside the predicted cell
    np.testing.assert_array_equal(fine.assign(located.lat_deg, located.lon_deg), classes)


def test_top_k_is_sorted_best_first():
    rng = np.random.default_rng(3)
    probs = rng.random((7, 50)).astype(np.float32)
    classes, best = top_k(probs, 5)
    np.testing.assert_array_equal(classes, np.argsort(-probs, axis=1)[:, :5])
    np.testing.assert_array_equal(best, np.sort(probs, axis=1)[:, ::-1][:, :5])
    assert top_k(probs[:, :3], 5)[0].shape == (7, 3)


def test_locator_rejects_mismatched_heads(parts):
    locator = Locator(parts)
    probs = {p.name: np.ones((1, len(p)), np.float32) for p in parts}
    probs["middle"] = np.ones((1, 3), np.float32)
    with pytest.raises(InputError, match="middle"):
        locator.locate(probs)
    with pytest.raises(InputError, match="lack"):
        locator.locate({"fine": probs["fine"]})
    with pytest.raises(InputError, match="centers"):
        Locator(parts, centers="median")


def _old_float_three_crops(image, size):
    """The float path the uint8 pipeline replaced: resize in float32, scale to [-1, 1], three crops."""
    import tensorflow as tf

    height, width = image.shape[:2]
    new_h, new_w = (max(size, round(d * size / min(height, width))) for d in (height, width))
    resized = tf.image.resize(image, [new_h, new_w]).numpy() / 127.5 - 1.0
    slack = max(new_h, new_w) - size
    return np.stack([resized[o:o + size, :size] if new_h > new_w else resized[:size, o:o + size]
                     for o in (0, slack // 2, slack)])


def test_uint8_images_give_the_old_float_paths_predictions(tmp_path):
    """Photos through the uint8 pipeline into a model that scales them itself give the probabilities
    of the old path (float32 [-1, 1] crops into the same network without its scaling layer)."""
    import keras
    import tensorflow as tf

    import geoest.demo.backbone  # noqa: F401  registers the demo CNN
    from geoest.data.pipeline import image_dataset
    from geoest.models import build_model

    size, parts = 48, helpers.partitionings()
    keras.utils.set_random_seed(3)
    model = build_model(parts, backbone="demo_cnn", image_size=size)
    for p in parts:   # sharper heads: confident, photo-dependent probabilities
        kernel, bias = model.get_layer(p.name).get_weights()
        model.get_layer(p.name).set_weights([kernel * 60, bias])
    float_model = keras.Model(model.get_layer("scale_images").output,
                              {p.name: model.get_layer(p.name).output for p in parts})
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(96, 128), (128, 96), (96, 96), (100, 171), (240, 180)]):
        smooth = tf.image.resize(rng.integers(0, 256, (6, 8, 3)).astype(np.float32), [h, w], "bicubic").numpy()
        photo = np.clip(smooth + rng.normal(0, 12, (h, w, 1)), 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(tf.io.encode_jpeg(photo, quality=90).numpy())

    (batch,) = list(image_dataset(paths, 8, image_size=size).as_numpy_iterator())
    assert batch["crops"].dtype == np.uint8
    new = {k: v.numpy() for k, v in crop_probabilities(model, batch["crops"]).items()}
    old_crops = np.stack([_old_float_three_crops(tf.io.decode_jpeg(p.read_bytes(), channels=3), size) for p in paths])
    old = {k: v.numpy() for k, v in crop_probabilities(float_model, old_crops.astype(np.float32)).items()}
    locator = Locator(parts)
    new_located, old_located = locator.locate(new), locator.locate(old)
    for name in locator.names:
        np.testing.assert_array_equal(new_located[name].top_classes, old_located[name].top_classes)
    for p in parts:
        np.testing.assert_allclose(new[p.name], old[p.name], atol=1e-3)
    np.testing.assert_allclose(locator.cell_probabilities(new)[HIERARCHY], locator.cell_probabilities(old)[HIERARCHY], atol=1e-3)
    # Not flat distributions: the coarse head is confident (0.35-0.52 here), and more so for some photos.
    confidence = new["coarse"].max(axis=1)
    assert confidence.min() > 0.3 and np.ptp(confidence) > 0.1
