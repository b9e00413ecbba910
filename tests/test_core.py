"""§3.4 inference core: three-crop mean, standard and hierarchical (f*) prediction, Class2GPS,
top-k cells, and ISN routing."""
import numpy as np
import pytest
import s2geometry as s2

import inference_helpers as helpers
from geoest.errors import InputError
from geoest.inference import HIERARCHY, IsnEnsemble, Locator, ModelScenes, crop_probabilities, route, top_k


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
    combined = locator.combine(probs)
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


def test_three_crop_mean_of_softmax():
    model = helpers.tiny_model({"a": 6, "b": 4}, image_size=16)
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 256, size=(2, 3, 16, 16, 3), dtype=np.uint8)
    got = {k: v.numpy() for k, v in crop_probabilities(model, crops).items()}
    for name in ("a", "b"):
        per_crop = []
        for c in range(3):   # each crop on its own: softmax of the logits, then the mean
            logits = model(crops[:, c], training=False)[name].numpy().astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            per_crop.append(e / e.sum(axis=1, keepdims=True))
        np.testing.assert_allclose(got[name], np.mean(per_crop, axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[name].sum(axis=1), 1.0, rtol=1e-5)
        assert not np.allclose(per_crop[0], per_crop[1])  # the crops really differ


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


def test_route_is_argmax_and_rejects_unknown():
    probs3 = np.array([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    np.testing.assert_array_equal(route(probs3), [0, 2, 1])
    with pytest.raises(InputError, match="img_b"):
        route(np.array([[0.5, 0.2, 0.3], [np.nan] * 3]), ids=["img_a", "img_b"])


def test_isn_routing_sends_each_image_to_its_concept_model():
    sizes = {"coarse": 5, "fine": 9}
    # ISN k always predicts class k in coarse and 2k+1 in fine: the output names the ISN used
    models = {concept: helpers.constant_model(sizes, {"coarse": k, "fine": 2 * k + 1}, image_size=8)
              for k, concept in enumerate(("indoor", "natural", "urban"))}
    probs3 = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.4, 0.35, 0.25]])
    batch = {"crops": np.zeros((5, 3, 8, 8, 3), np.uint8), "probs3": probs3, "id": np.arange(5)}
    ensemble = IsnEnsemble(models, scenes=lambda b: b["probs3"])
    concepts = ensemble.concepts(batch)
    np.testing.assert_array_equal(concepts, [2, 0, 1, 2, 0])
    probs = ensemble.probabilities(batch)
    np.testing.assert_array_equal(probs["coarse"].argmax(axis=1), concepts)
    np.testing.assert_array_equal(probs["fine"].argmax(axis=1), 2 * concepts + 1)
    with pytest.raises(InputError, match="expected exactly"):
        IsnEnsemble({"indoor": models["indoor"], "urban": models["urban"]})


def test_routing_by_an_mtn_scene_head():
    sizes = {"fine": 4}
    mtn = helpers.tiny_model(sizes, image_size=8, scene_classes=3)
    crops = np.random.default_rng(5).integers(0, 256, (6, 3, 8, 8, 3), dtype=np.uint8)
    scenes = ModelScenes(mtn)
    probs3 = scenes({"crops": crops})
    expected = crop_probabilities(mtn, crops)["scene"].numpy()
    np.testing.assert_allclose(probs3, expected, rtol=1e-6)
    with pytest.raises(InputError, match="scene output"):
        ModelScenes(helpers.tiny_model(sizes, image_size=8))


@pytest.mark.shared_data
def test_routing_by_a_places365_classifier(places365_dir):
    """A scene classifier with 365 softmax outputs routes by its §3.2 S3 aggregation."""
    import keras

    from geoest.inference.isn import scene_to_s3_matrix
    from geoest.scene.places365 import load_scene_hierarchy

    hierarchy = load_scene_hierarchy(places365_dir / "scene_hierarchy_places365.csv",
                                     places365_dir / "categories_places365.txt")
    images = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(images)
    classifier = keras.Model(images, keras.layers.Dense(365, activation="softmax",
                                                        kernel_initializer=keras.initializers.RandomNormal(stddev=2.0))(x))
    crops = np.random.default_rng(6).integers(0, 256, (4, 3, 8, 8, 3), dtype=np.uint8)
    probs3 = ModelScenes(classifier, output=None, scene_hierarchy=hierarchy)({"crops": crops})
    # A float-input classifier gets its convention ("tf": [-1, 1]) applied on the host.
    per_crop = classifier(crops.reshape(-1, 8, 8, 3) / 127.5 - 1.0).numpy().reshape(4, 3, 365).mean(axis=1)
    np.testing.assert_allclose(probs3, per_crop @ hierarchy.s3_matrix, rtol=1e-5)
    np.testing.assert_allclose(probs3.sum(axis=1), 1.0, rtol=1e-5)
    s16_to_s3 = scene_to_s3_matrix(16, hierarchy)
    np.testing.assert_allclose(s16_to_s3.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(InputError, match="Places365"):
        scene_to_s3_matrix(365, None)


def test_scene_output_kind_is_read_from_the_model():
    """Probabilities or logits from the last activation; a model that does not tell is asked about;
    widths other than 3 / 16 / 365 and outputs that are not probabilities are errors naming the photo."""
    import keras

    from geoest.inference.isn import LOGITS, PROBABILITIES, output_kind

    images = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(images)

    def model(outputs):
        return keras.Model(images, outputs)

    softmax = model(keras.layers.Dense(3, activation="softmax")(pooled))
    logits = model({"scene": keras.layers.Dense(3)(pooled)})
    softmax_layer = model(keras.layers.Softmax()(keras.layers.Dense(3)(pooled)))
    relu = model(keras.layers.Dense(3, activation="relu")(pooled))
    nested = model(softmax(images))
    assert output_kind(softmax, softmax.output_names[0]) == PROBABILITIES
    assert output_kind(softmax_layer, softmax_layer.output_names[0]) == PROBABILITIES
    assert output_kind(nested, nested.output_names[0]) == PROBABILITIES
    assert output_kind(logits, "scene") == LOGITS
    assert output_kind(relu, relu.output_names[0]) is None
    with pytest.raises(InputError, match="relu.keras: cannot tell .* --scene_output=probabilities"):
        ModelScenes(relu, output=None, source="relu.keras")
    assert not ModelScenes(relu, output=None, kind=PROBABILITIES).from_logits
    with pytest.raises(InputError, match="--scene_output=logits but its last activation makes"):
        ModelScenes(softmax, output=None, kind=LOGITS)
    with pytest.raises(InputError, match="c.keras: its scene output has 5 classes; expected 3"):
        ModelScenes(model(keras.layers.Dense(5, activation="softmax")(pooled)), output=None, source="c.keras")

    crops = np.full((2, 3, 8, 8, 3), 127.5, np.float32)   # 0 after the "tf" convention's x / 127.5 - 1
    not_normalised = ModelScenes(relu, output=None, kind=PROBABILITIES, source="relu.keras")
    with pytest.raises(InputError, match="relu.keras: photo b.jpg: .* do not sum to 1"):
        not_normalised({"crops": crops, "id": np.array([b"b.jpg", b"c.jpg"])})   # relu(0) = 0 everywhere
    nan_crops = crops.copy()
    nan_crops[1, 2, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="photo c.jpg: .* NaN"):
        ModelScenes(logits)({"crops": nan_crops, "id": np.array([b"b.jpg", b"c.jpg"])})
    np.testing.assert_allclose(ModelScenes(softmax, output=None)({"crops": crops}).sum(axis=1), 1.0, rtol=1e-6)


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
    np.testing.assert_allclose(locator.combine(new)[HIERARCHY], locator.combine(old)[HIERARCHY], atol=1e-3)
    # Not flat distributions: the coarse head is confident (0.35-0.52 here), and more so for some photos.
    confidence = new["coarse"].max(axis=1)
    assert confidence.min() > 0.3 and np.ptp(confidence) > 0.1
