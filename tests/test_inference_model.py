"""geoest.models.inference_model, §3.4 in Keras ops: the three-crop mean of the softmax, each output's
top-k classes and f*'s, and the Keras model that runs them around a geo model."""
import numpy as np

import inference_helpers as helpers
from geoest.geo import Hierarchy
from geoest.geo.hierarchy import HIERARCHY
from geoest.models import build_inference_model
from geoest.models.inference_model import crop_probabilities


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


def test_inference_model_gives_the_top_cells_of_each_head_and_of_f_star():
    parts = helpers.partitionings()
    sizes = {p.name: len(p) for p in parts}
    model = helpers.tiny_model(sizes, image_size=16)
    hierarchy = Hierarchy(sorted(parts, key=len))
    names = [p.name for p in hierarchy.partitionings]
    inference = build_inference_model(model, names, hierarchy.parents, top_k=3)
    crops = np.random.default_rng(5).integers(0, 256, size=(4, 3, 16, 16, 3), dtype=np.uint8)
    got = {k: np.asarray(v) for k, v in inference.predict_on_batch(crops).items()}
    assert sorted(got) == sorted(f"{n}/{k}" for n in names + [HIERARCHY] for k in ("top_classes", "top_probabilities"))
    probs = {k: v.numpy().astype(np.float64) for k, v in crop_probabilities(model, crops).items()}
    expected = dict(probs, **{HIERARCHY: hierarchy.f_star([probs[n] for n in names])})
    for name, p in expected.items():
        assert got[f"{name}/top_classes"].dtype == np.int32 and got[f"{name}/top_classes"].shape == (4, 3)
        np.testing.assert_array_equal(got[f"{name}/top_classes"], np.argsort(-p, axis=1)[:, :3])
        np.testing.assert_allclose(got[f"{name}/top_probabilities"], -np.sort(-p, axis=1)[:, :3], rtol=1e-4)
    alone = build_inference_model(model, names, None, top_k=2).predict_on_batch(crops)   # no parents: no f*
    assert sorted(alone) == sorted(f"{n}/{k}" for n in names for k in ("top_classes", "top_probabilities"))
