"""geoest.inference.isn: routing each photo to its concept's ISN (§3.3) by an MTN's scene head, a
Places365 classifier or the data's labels."""
import numpy as np
import pytest

import inference_helpers as helpers
from geoest.errors import InputError
from geoest.inference import IsnEnsemble, ModelScenes, crop_probabilities, route


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
