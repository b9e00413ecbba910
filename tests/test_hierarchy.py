"""Hierarchy (§3.4): parents by S2 ancestry, the product of probabilities, clear errors."""
import keras
import numpy as np
import pytest
import s2geometry as s2
import tensorflow as tf

from geoest.errors import InputError
from geoest.geo import Hierarchy, Partitioning


@pytest.fixture(scope="module")
def real_hierarchy():
    from conftest import MP16_DIR
    if not MP16_DIR.exists():
        pytest.skip("../shared is absent")
    parts = [Partitioning.from_csv(MP16_DIR / f"cells_50_{t}.csv") for t in (5000, 2000, 1000)]
    return parts, Hierarchy(parts)


def test_real_parents_equal_s2_ancestry(real_hierarchy):
    parts, h = real_hierarchy
    coarse, middle, fine = parts
    assert h.parents.shape == (12893, 3)
    np.testing.assert_array_equal(h.parents[:, 2], np.arange(12893))
    for k, p in enumerate((coarse, middle)):
        for c, fine_id in enumerate(fine.cell_ids.tolist()):
            parent = s2.S2CellId(int(p.cell_ids[h.parents[c, k]]))
            assert parent.contains(s2.S2CellId(fine_id)), (fine.tokens[c], p.name)


def _random_probs(rng, batch, sizes):
    out = []
    for n in sizes:
        logits = rng.normal(size=(batch, n))
        e = np.exp(logits - logits.max(1, keepdims=True))
        out.append(e / e.sum(1, keepdims=True))
    return out


def test_f_star_is_the_renormalised_product_along_ancestry(real_hierarchy):
    parts, h = real_hierarchy
    rng = np.random.default_rng(0)
    probs = _random_probs(rng, 4, [len(p) for p in parts])
    combined = h.f_star(probs)
    assert combined.shape == (4, 12893)
    np.testing.assert_allclose(combined.sum(axis=1), 1.0, rtol=1e-12)
    product = probs[0][:, h.parents[:, 0]] * probs[1][:, h.parents[:, 1]] * probs[2]
    total = product.sum(axis=1)
    for c in rng.integers(0, 12893, 20):  # a per-cell reference
        expected = probs[0][:, h.parents[c, 0]] * probs[1][:, h.parents[c, 1]] * probs[2][:, c] / total
        np.testing.assert_allclose(combined[:, c], expected, rtol=1e-12)
    got_keras = h.f_star([tf.constant(p, tf.float32) for p in probs], keras.ops).numpy()   # the same function
    np.testing.assert_allclose(got_keras, combined, rtol=1e-4)


def test_combine_is_the_product_along_ancestry_as_design_states(real_hierarchy):
    parts, h = real_hierarchy
    probs = _random_probs(np.random.default_rng(1), 3, [len(p) for p in parts])
    product = h.combine(probs)
    assert product.shape == (3, 12893)
    np.testing.assert_allclose(product, probs[0][:, h.parents[:, 0]] * probs[1][:, h.parents[:, 1]] * probs[2],
                               rtol=1e-12)
    assert (product.sum(axis=1) < 1).all()      # not renormalised: that is f*
    np.testing.assert_allclose(h.f_star(probs), product / product.sum(axis=1, keepdims=True), rtol=1e-12)
    got_keras = h.combine([tf.constant(p, tf.float32) for p in probs], keras.ops).numpy()
    np.testing.assert_allclose(got_keras, product, rtol=1e-4)
    with pytest.raises(InputError, match="expected 3 probability arrays"):
        h.combine(probs[:2])


def test_orphan_fine_cell_names_the_cell():
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(40, 50, 500), rng.uniform(0, 10, 500)
    coarse = Partitioning.build(lat, lon, tau_min=10, tau_max=400, name="coarse")
    other = Partitioning.build(lat + 20, lon, tau_min=10, tau_max=100, name="elsewhere")
    with pytest.raises(InputError, match=r"fine cell '[0-9a-f]+' \(class 0 of 'elsewhere'\) "
                                         r"has no ancestor cell in partitioning 'coarse'"):
        Hierarchy([coarse, other])


def test_built_partitionings_form_a_hierarchy():
    rng = np.random.default_rng(1)
    lat = np.concatenate([rng.normal(48, 1, 3000), rng.normal(-30, 3, 2000)])
    lon = np.concatenate([rng.normal(11, 1, 3000), rng.normal(150, 3, 2000)])
    parts = [Partitioning.build(lat, lon, tau_min=10, tau_max=t) for t in (1000, 300, 100)]
    h = Hierarchy(parts)
    fine_classes = parts[-1].assign(lat, lon)
    inside = fine_classes >= 0
    for k, p in enumerate(parts):
        # The parent of a point's fine cell is the point's own cell in the coarser partitioning.
        np.testing.assert_array_equal(h.parents[fine_classes[inside], k], p.assign(lat, lon)[inside])
    with pytest.raises(InputError, match="expected 3 probability arrays"):
        h.f_star([np.ones((1, len(parts[0])))])
    with pytest.raises(InputError, match="classes"):
        h.f_star([np.ones((1, 2))] * 3)
