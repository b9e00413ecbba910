"""`Confidence`: the answers of one hierarchy with their regions, back-off and cap, in numpy and TensorFlow."""
import numpy as np
import pytest

from confidence_helpers import hierarchy, parts, random_distributions  # noqa: F401 (fixtures)
from geoest.geo.confidence import Confidence


def test_one_cell_distribution_gives_that_cell(parts):
    fine = parts[-1]
    c = int(np.argmin(fine.counts))
    probs = np.zeros((1, len(fine)))
    probs[0, c] = 1.0
    answer = Confidence([fine])(probs)
    for key in ("50", "90"):
        assert answer[f"region_size_{key}"][0] == 1
        assert answer[f"region_{key}"][0] == [fine.tokens[c]]
        assert f"radius_km_{key}" not in answer      # R_p is the quantile of geoest.geo.distance_weights
    assert answer["probability"][0] == 1.0


@pytest.mark.parametrize("cap_km", [None, 300.0])
def test_tensorflow_form_gives_the_same_answers(parts, hierarchy, cap_km):
    rng = np.random.default_rng(3)
    confidence = Confidence(parts, hierarchy.parents, min_confidence=0.4, max_resolution_km=cap_km)
    probs = random_distributions(rng, 16, len(parts[-1]), sparsity=0.9)
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
