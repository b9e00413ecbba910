"""§3.2: the Places365 ResNet-152 Caffe release converted to Keras equals OpenCV's run of the Caffe files.

Caffemodels are written here with random weights through the published caffe.proto (no Caffe, no
download): a small ResNet of the same layer types (fast), and the exact published
ResNet-152 definition (slow). The Keras model's probabilities must equal OpenCV's forward pass
within 1e-4, with the same S3 / S16 labels, and conversions with a deliberate mistake must not.
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from caffe_helpers import (net_class, opencv_probabilities, serving, small, write_caffemodel,  # noqa: F401 (fixtures)
                           write_random_caffemodel)
from geoest.errors import InputError
from geoest.scene import caffe, conversion, labeler, places365
from geoest.scene.prototxt import read_prototxt
from scene_helpers import read_rows, write_meta, write_photos

pytestmark = pytest.mark.shared_data
REPO = pathlib.Path(__file__).resolve().parents[1]
ATOL = 1e-4
PHOTO_SIZES = [(48, 48), (200, 120), (75, 310), (640, 480)]     # (width, height)


def photos(tmp_path, size):
    """uint8 RGB [n, size, size, 3]: photos of different sizes, resized whole as the labeller does."""
    ids = [f"p{i}.jpg" for i in range(len(PHOTO_SIZES))]
    for img_id, (width, height) in zip(ids, PHOTO_SIZES):
        write_photos(tmp_path / "photos", [img_id], size=(width, height), seed=len(img_id) + width)
    return np.stack([labeler.load_image(tmp_path / "photos" / i, size) for i in ids])


def compare(keras_probs, opencv_probs, hierarchy):
    """Max absolute difference, and whether the S3 and S16 labels agree on every photo."""
    labels_k, labels_o = hierarchy.labels(keras_probs), hierarchy.labels(opencv_probs)
    agree = all(np.array_equal(labels_k[level], labels_o[level]) for level in ("S3", "S16"))
    return float(np.abs(keras_probs - opencv_probs).max()), agree


def assert_informative(probs):
    """Random weights must give probabilities that are not one-hot and differ between the photos, or
    the comparison shows little."""
    assert probs.max() < 0.999 and np.abs(probs - probs.mean(axis=0)).max() > 0.01, probs.max(axis=1)


def assert_mistakes_are_caught(prototxt, caffemodel, images, reference):
    """Conversions with one deliberate mistake (RGB input instead of BGR; the Scale layers left out)
    fail the comparison."""
    net = read_prototxt(prototxt)
    blobs = caffe.read_blobs(net, caffemodel)
    rgb = caffe.Preprocessing("RGB", tuple(reversed(caffe.CAFFE_IMAGENET.mean)))
    for mistake in (caffe.build_model(net, blobs, rgb), caffe.build_model(net, blobs, fold_scale=False)):
        assert np.abs(mistake.predict_on_batch(images) - reference).max() > 100 * ATOL


def test_opencv_gives_back_every_blob_exactly(small):
    prototxt, caffemodel, written = small
    read = caffe.read_blobs(read_prototxt(prototxt), caffemodel)
    assert {name for name, arrays in read.items() if arrays} == set(written)
    for name, arrays in written.items():
        assert len(read[name]) == len(arrays)
        for got, want in zip(read[name], arrays):
            assert got.size == want.size and np.array_equal(got.ravel(), want.ravel()), name


def test_small_resnet_equals_opencv_and_mistakes_are_caught(small, tmp_path, places365_dir):
    prototxt, caffemodel, _ = small
    hierarchy = places365.load_default_hierarchy(places365_dir)
    images = photos(tmp_path, 48)
    reference = opencv_probabilities(prototxt, caffemodel, images)
    assert_informative(reference)

    output = tmp_path / "small.keras"
    manifest = conversion.convert(prototxt, caffemodel, output, places365=False)
    model = labeler.load_scene_classifier(output)
    assert labeler.read_model_manifest(output, model)["caffemodel"]["sha256"] == conversion.file_sha256(caffemodel)
    assert manifest["preprocessing"]["channel_order"] == "BGR"
    diff, agree = compare(labeler.classify(model, images), reference, hierarchy)
    assert diff < ATOL and agree

    assert_mistakes_are_caught(prototxt, caffemodel, images, reference)


def test_bad_caffemodels_are_named_with_their_first_wrong_layer(small, net_class, tmp_path):
    prototxt, caffemodel, written = small
    net = read_prototxt(prototxt)
    wrong = dict(written, res2a_branch2b=[np.zeros((4, 4, 1, 1), np.float32)])
    write_caffemodel(net_class, prototxt, tmp_path / "wrong.caffemodel", wrong)
    with pytest.raises(InputError, match=r"wrong.caffemodel.*layer 'res2a_branch2b' \(Convolution\).*\(4, 4, 3, 3\)"):
        caffe.build_model(net, caffe.read_blobs(net, tmp_path / "wrong.caffemodel"),
                          caffemodel=tmp_path / "wrong.caffemodel")
    write_caffemodel(net_class, prototxt, tmp_path / "missing.caffemodel",
                     {k: v for k, v in written.items() if k != "scale_res3a_branch1"})
    with pytest.raises(InputError, match=r"missing.caffemodel.*layer 'scale_res3a_branch1' \(Scale\)"):
        conversion.convert(prototxt, tmp_path / "missing.caffemodel", tmp_path / "m.keras", places365=False)
    (tmp_path / "page.caffemodel").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(InputError, match="page.caffemodel: an HTML page"):
        caffe.read_blobs(net, tmp_path / "page.caffemodel")
    (tmp_path / "cut.caffemodel").write_bytes(caffemodel.read_bytes()[:caffemodel.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.caffemodel: OpenCV cannot read it"):
        caffe.read_blobs(net, tmp_path / "cut.caffemodel")
    assert not list(tmp_path.glob("*.keras")), "a failed conversion leaves no output"


def test_label_scenes_uses_the_converted_model_by_default(small, tmp_path, places365_dir):
    prototxt, caffemodel, _ = small
    cache = tmp_path / "cache" / "places365"
    cache.mkdir(parents=True)
    for name in (places365.CATEGORIES_FILE, places365.HIERARCHY_FILE):
        (cache / name).symlink_to(places365_dir / name)
    env = dict(os.environ, GEOEST_CACHE=str(tmp_path / "cache"))
    converted = subprocess.run(
        [sys.executable, "-c", "from geoest.scene import conversion, labeler; "
         f"conversion.convert({str(prototxt)!r}, {str(caffemodel)!r}, labeler.default_weights_path(), places365=False)"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert converted.returncode == 0, converted.stderr[-2000:]
    ids = ["a.jpg", "b.jpg", "c.jpg"]
    write_photos(tmp_path / "images", ids)
    write_meta(tmp_path / "meta.csv", ids)
    output = tmp_path / "labels.csv"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "label_scenes.py"), f"--images_dir={tmp_path / 'images'}",
         f"--meta_csv={tmp_path / 'meta.csv'}", f"--output_csv={output}"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r[0] for r in read_rows(output)[1:]] == ids
    recorded = json.loads((output.parent / (output.name + ".json")).read_text())["inputs"]
    assert recorded["scene model"]["caffemodel"]["sha256"] == conversion.file_sha256(caffemodel)
    assert recorded["preprocess"].startswith("inside the model")


@pytest.mark.slow
def test_published_resnet152_equals_opencv(places365_dir, net_class, tmp_path):
    published = places365_dir / conversion.PROTOTXT_FILE
    served = tmp_path / "served.caffemodel"
    write_random_caffemodel(net_class, published, served, seed=3)
    with serving({"p": published.read_bytes(), "c": served.read_bytes()}) as url:    # --download, locally
        prototxt, caffemodel = conversion.fetch_release(tmp_path / "cache", prototxt_url=f"{url}/p",
                                                   caffemodel_url=f"{url}/c")
    assert conversion.file_sha256(caffemodel) == conversion.file_sha256(served)
    hierarchy = places365.load_default_hierarchy(places365_dir)
    images = photos(tmp_path, 224)
    reference = opencv_probabilities(prototxt, caffemodel, images)
    assert_informative(reference)

    output = tmp_path / labeler.WEIGHTS_FILE
    conversion.convert(prototxt, caffemodel, output)
    model = labeler.load_scene_classifier(output)
    diff, agree = compare(labeler.classify(model, images), reference, hierarchy)
    assert diff < ATOL and agree
    assert_mistakes_are_caught(prototxt, caffemodel, images, reference)


def test_isns_are_routed_by_the_converted_model_by_name(small, tmp_path, places365_dir, monkeypatch):
    """evaluate / predict --scene_model=places365: the converted model in the cache routes each photo
    to the ISN of the S3 concept that OpenCV's run of the Caffe files gives its crops (§3.4)."""
    import inference_helpers as helpers
    from geoest.inference.methods import load_methods

    prototxt, caffemodel, _ = small
    monkeypatch.setenv("GEOEST_CACHE", str(tmp_path / "cache"))
    cache = labeler.default_weights_path().parent
    cache.mkdir(parents=True)
    for name in (places365.CATEGORIES_FILE, places365.HIERARCHY_FILE):       # the hierarchy beside it
        (cache / name).symlink_to(places365_dir / name)
    conversion.convert(prototxt, caffemodel, labeler.default_weights_path(), places365=False)
    parts = helpers.partitionings(300)
    sizes = {p.name: len(p) for p in parts}
    isn_dirs = {}
    for k, concept in enumerate(places365.CONCEPTS):
        isn_dirs[concept] = tmp_path / f"isn_{concept}"
        helpers.save_model_dir(helpers.constant_model(sizes, {p.name: k for p in parts}, image_size=48), parts,
                               isn_dirs[concept])
    hierarchy = places365.load_default_hierarchy(places365_dir)
    (method,), size = load_methods(isn_dirs=isn_dirs, scene_model=labeler.PLACES365_MODEL)
    assert size == 48 and method.source["routing"]["path"] == str(labeler.default_weights_path().resolve())

    crops = photos(tmp_path, 48).reshape(2, 2, 48, 48, 3)                   # two photos, two crops each
    probs365 = opencv_probabilities(prototxt, caffemodel, crops.reshape(-1, 48, 48, 3)).reshape(2, 2, -1)
    expected = (probs365.mean(axis=1) @ hierarchy.s3_matrix).argmax(axis=1)
    np.testing.assert_array_equal(method.concepts({"crops": crops}), expected)
