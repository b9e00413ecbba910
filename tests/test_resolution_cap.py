"""The resolution cap: areas at least K wide answer for the finest cells, in `Confidence`'s every output."""
import numpy as np

from confidence_helpers import hierarchy, parts, random_distributions  # noqa: F401 (fixtures)
from geoest.geo import Hierarchy, s2cell
from geoest.geo.cell_outlines import FACE_EXTENT_KM, cell_outlines, extents_km
from geoest.geo.confidence import Confidence


def test_no_capped_output_is_finer_than_the_cap(parts, hierarchy):
    """Property: over random distributions, caps and back-off thresholds, every point, region and
    answer of a capped Confidence names areas at least K wide."""
    rng = np.random.default_rng(2)
    fine = parts[-1]
    first, last = s2cell.leaf_ranges(fine.cell_ids)
    for trial in range(12):
        k_km = float(np.exp(rng.uniform(np.log(5.0), np.log(FACE_EXTENT_KM))))
        confidence = Confidence(parts, hierarchy.parents, min_confidence=float(rng.uniform(0, 1)),
                                     max_resolution_km=k_km)
        cap = confidence.cap
        assert (cap.node_extent_km[cap.units] >= k_km).all()
        # units cover each fine cell (an ancestor or the cell itself) and never overlap
        unit_first, unit_last = s2cell.leaf_ranges(cap.node_ids[cap.units])
        mine = cap.unit_of_fine
        assert ((unit_first[mine] <= first) & (last <= unit_last[mine])).all()
        by_start = np.argsort(unit_first)
        assert (unit_first[by_start][1:] > unit_last[by_start][:-1]).all()
        probs = random_distributions(rng, 20, len(fine), sparsity=float(rng.uniform(0.5, 0.99)))
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
    confidence = Confidence(parts, Hierarchy(parts).parents, max_resolution_km=1.0)
    fine_extents = extents_km(cell_outlines(parts[-1].cell_ids))
    wide = fine_extents.min() >= 1.0
    assert not wide or len(confidence.cap.units) == len(parts[-1])
