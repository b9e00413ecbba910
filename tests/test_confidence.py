"""Confidence regions, back-off and the resolution cap on hand-made distributions."""
import numpy as np
import pytest

from geoest.errors import InputError
from geoest.geo import Hierarchy, s2cell
from geoest.geo import confidence as conf
from inference_helpers import partitionings


@pytest.fixture(scope="module")
def parts():
    return partitionings(1500)


@pytest.fixture(scope="module")
def hierarchy(parts):
    return Hierarchy(parts)


def _random_distributions(rng, batch, n, sparsity=0.7):
    probs = rng.gamma(0.3, size=(batch, n)) * (rng.uniform(size=(batch, n)) > sparsity)
    probs[np.arange(batch), rng.integers(n, size=batch)] += 1e-3   # never all zero
    return probs / probs.sum(axis=1, keepdims=True)


def test_region_holds_the_stated_mass_and_is_smallest():
    rng = np.random.default_rng(0)
    probs = _random_distributions(rng, 200, 40)
    for p in (0.1, 0.5, 0.9, 0.99):
        order, sizes = conf.region_sizes(probs, p)
        members = conf.in_region(order, sizes)
        mass = np.where(members, probs, 0).sum(axis=1)
        assert (mass >= p - 1e-9).all()
        # one cell fewer (the least probable of the set) no longer holds p: the set is the smallest
        smaller = mass - np.take_along_axis(probs, order[np.arange(200), sizes - 1][:, None], axis=1)[:, 0]
        assert (smaller < p).all()
        # the set holds the most probable cells
        outside = np.where(members, -1, probs).max(axis=1)
        inside = np.where(members, probs, 2).min(axis=1)
        assert (outside <= inside).all()


def test_mass_near_one_gives_the_whole_support():
    probs = np.array([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
    _, sizes = conf.region_sizes(probs, 1 - 1e-9)
    assert sizes.tolist() == [3, 1]
    order, sizes = conf.region_sizes(probs, 0.5)
    assert sizes.tolist() == [1, 1] and order[0, 0] == 0


def test_one_cell_distribution_gives_that_cell(parts):
    fine = parts[-1]
    c = int(np.argmin(fine.counts))
    probs = np.zeros((1, len(fine)))
    probs[0, c] = 1.0
    answer = conf.Confidence([fine])(probs)
    for key in ("50", "90"):
        assert answer[f"region_size_{key}"][0] == 1
        assert answer[f"region_{key}"][0] == [fine.tokens[c]]
        assert f"radius_km_{key}" not in answer      # R_p is the quantile of geoest.geo.within
    assert answer["probability"][0] == 1.0


def test_back_off_picks_the_finest_level_reaching_q(parts, hierarchy):
    parents = hierarchy.parents
    # a middle cell with several fine children: spread the mass over them
    middle = np.bincount(parents[:, 1]).argmax()
    children = np.flatnonzero(parents[:, 1] == middle)
    assert len(children) >= 2
    probs = np.zeros((3, len(parts[-1])))
    probs[0, children[0]] = 1.0                              # sure of a fine cell
    probs[1, children] = 1.0 / len(children)                 # sure of the middle cell only
    probs[2] = 1.0 / probs.shape[1]                          # no idea
    levels = conf.level_probabilities(probs, parents)
    assert [lp.shape[1] for lp in levels] == [len(p) for p in parts]
    np.testing.assert_allclose([lp.sum(axis=1) for lp in levels], 1.0)
    level, classes, probability = conf.back_off(levels, 0.8)
    coarse_of_middle = parents[children[0], 0]
    expected_coarse = levels[0][2].max() >= 0.8
    assert level[0] == 2 and classes[0] == children[0] and probability[0] == 1.0
    assert level[1] == 1 and classes[1] == middle and probability[1] == pytest.approx(1.0)
    assert level[2] == (0 if expected_coarse else conf.NO_ANSWER)
    assert conf.back_off(levels, 0.0)[0].tolist() == [2, 2, 2]
    answer = conf.Confidence(parts, parents, min_confidence=0.8)(probs)
    assert answer["level"].tolist() == ["fine", "middle", "none"]
    assert answer["answer_cell"][1] == parts[1].tokens[middle]
    assert coarse_of_middle >= 0


def test_no_capped_output_is_finer_than_the_cap(parts, hierarchy):
    """Property: over random distributions, caps and back-off thresholds, every point, region and
    answer of a capped Confidence names areas at least K wide."""
    rng = np.random.default_rng(2)
    fine = parts[-1]
    first, last = s2cell.leaf_ranges(fine.cell_ids)
    for trial in range(12):
        k_km = float(np.exp(rng.uniform(np.log(5.0), np.log(conf.FACE_EXTENT_KM))))
        confidence = conf.Confidence(parts, hierarchy.parents, min_confidence=float(rng.uniform(0, 1)),
                                     max_resolution_km=k_km)
        cap = confidence.cap
        assert (cap.node_extent_km[cap.units] >= k_km).all()
        # units cover each fine cell (an ancestor or the cell itself) and never overlap
        unit_first, unit_last = s2cell.leaf_ranges(cap.node_ids[cap.units])
        mine = cap.unit_of_fine
        assert ((unit_first[mine] <= first) & (last <= unit_last[mine])).all()
        by_start = np.argsort(unit_first)
        assert (unit_first[by_start][1:] > unit_last[by_start][:-1]).all()
        probs = _random_distributions(rng, 20, len(fine), sparsity=float(rng.uniform(0.5, 0.99)))
        answer = confidence(probs)
        uncapped = probs.argmax(axis=1)
        extent = dict(zip(cap.tokens, cap.node_extent_km))
        # the capped answer is the area holding the predicted cell, with that area's probability
        holding = [cap.tokens[cap.units[u]] for u in cap.unit_of_fine[uncapped]]
        assert list(answer["cell"]) == holding
        np.testing.assert_allclose(answer["probability"], cap.unit_probabilities(probs)[
            np.arange(len(probs)), cap.unit_of_fine[uncapped]])
        center = dict(zip(cap.tokens, map(tuple, cap.node_centers)))
        for b in range(len(probs)):
            assert extent[answer["cell"][b]] >= k_km
            assert (answer["lat"][b], answer["lon"][b]) == center[answer["cell"][b]]
            for key in ("50", "90"):
                assert all(extent[t] >= k_km for t in answer[f"region_{key}"][b])
            if answer["level"][b] != "none":
                assert extent[answer["answer_cell"][b]] >= k_km
                assert (answer["answer_lat"][b], answer["answer_lon"][b]) == center[answer["answer_cell"][b]]


def test_cap_keeps_cells_wider_than_k(parts):
    confidence = conf.Confidence(parts, Hierarchy(parts).parents, max_resolution_km=1.0)
    fine_extents = conf.extents_km(conf.cell_outlines(parts[-1].cell_ids))
    wide = fine_extents.min() >= 1.0
    assert not wide or len(confidence.cap.units) == len(parts[-1])


def test_scores():
    confidence = np.array([0.9, 0.8, 0.3, 0.1])
    correct = np.array([1, 1, 0, 0], bool)
    assert conf.expected_calibration_error(confidence, correct, bins=10) == pytest.approx(
        (0.1 + 0.2 + 0.3 + 0.1) / 4)
    curve = conf.accuracy_coverage(np.array([1.0, 30.0, 10.0, 5000.0]), confidence, (25,))
    np.testing.assert_allclose(curve["accuracy"][25], [1, 0.5, 2 / 3, 0.5])
    assert curve["area"][25] == pytest.approx(np.mean([1, 0.5, 2 / 3, 0.5]))
    assert conf.accuracy_of_most_confident([1.0, 30.0, 10.0, 5000.0], confidence, 0.5, 25) == 0.5


@pytest.mark.parametrize("check,value", [(conf.check_masses, [0.0]), (conf.check_masses, [1.0]),
                                         (conf.check_masses, ["x"]), (conf.check_min_confidence, -0.1),
                                         (conf.check_min_confidence, 1.5), (conf.check_max_resolution, 0),
                                         (conf.check_max_resolution, -3)])
def test_bad_input_names_the_flag(check, value):
    with pytest.raises(InputError, match="--"):
        check(value)


@pytest.mark.parametrize("cap_km", [None, 300.0])
def test_tensorflow_form_gives_the_same_answers(parts, hierarchy, cap_km):
    rng = np.random.default_rng(3)
    confidence = conf.Confidence(parts, hierarchy.parents, min_confidence=0.4, max_resolution_km=cap_km)
    probs = _random_distributions(rng, 16, len(parts[-1]), sparsity=0.9)
    expected = confidence(probs)
    got = {k: v.numpy() for k, v in confidence.outputs_tf(probs).items()}
    assert not [k for k in got if k.startswith("radius_km")]
    for key in ("lat", "lon", "probability", "answer_probability"):
        np.testing.assert_allclose(got[key], expected[key].astype(float), rtol=1e-9, err_msg=key)
    np.testing.assert_allclose(got["answer_lat"], expected["answer_lat"], rtol=1e-9)
    for key in ("cell", "level", "answer_cell"):
        assert [v.decode() for v in got[key]] == list(expected[key]), key
    for key in ("50", "90"):
        assert got[f"region_size_{key}"].tolist() == expected[f"region_size_{key}"].tolist()
        assert [[t.decode() for t in row if t] for row in got[f"region_cells_{key}"]] == expected[f"region_{key}"]
