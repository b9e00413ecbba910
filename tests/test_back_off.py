"""Back-off: the finest level whose predicted cell holds q (`back_off_cells`, and through `Confidence`),
or whose P(error <= R_level) reaches q (`finest_level_reaching`)."""
import numpy as np
import pytest

from confidence_helpers import hierarchy, parts  # noqa: F401 (fixtures)
from geoest.errors import InputError
from geoest.geo.back_off import NO_ANSWER, back_off_cells, finest_level_reaching, level_names, level_probabilities
from geoest.geo.confidence import Confidence


def test_back_off_cells_picks_the_finest_level_reaching_q(parts, hierarchy):
    parents = hierarchy.parents
    # a middle cell with several fine children: spread the mass over them
    middle = np.bincount(parents[:, 1]).argmax()
    children = np.flatnonzero(parents[:, 1] == middle)
    assert len(children) >= 2
    probs = np.zeros((3, len(parts[-1])))
    probs[0, children[0]] = 1.0                              # sure of a fine cell
    probs[1, children] = 1.0 / len(children)                 # sure of the middle cell only
    probs[2] = 1.0 / probs.shape[1]                          # no idea
    levels = level_probabilities(probs, parents)
    assert [lp.shape[1] for lp in levels] == [len(p) for p in parts]
    np.testing.assert_allclose([lp.sum(axis=1) for lp in levels], 1.0)
    level, classes, probability = back_off_cells(levels, 0.8)
    coarse_of_middle = parents[children[0], 0]
    expected_coarse = levels[0][2].max() >= 0.8
    assert level[0] == 2 and classes[0] == children[0] and probability[0] == 1.0
    assert level[1] == 1 and classes[1] == middle and probability[1] == pytest.approx(1.0)
    assert level[2] == (0 if expected_coarse else NO_ANSWER)
    assert back_off_cells(levels, 0.0)[0].tolist() == [2, 2, 2]
    answer = Confidence(parts, parents, min_confidence=0.8)(probs)
    assert answer["level"].tolist() == ["fine", "middle", "none"]
    assert answer["answer_cell"][1] == parts[1].tokens[middle]
    assert coarse_of_middle >= 0


def test_finest_level_reaching_q_on_p_within():
    # levels coarse (750 km), middle (200 km), fine (25 km)
    scores = np.array([[0.9, 0.7, 0.2], [0.9, 0.3, 0.1], [0.4, 0.2, 0.1], [0.95, 0.9, 0.8]])
    np.testing.assert_array_equal(finest_level_reaching(scores, 0.5), [1, 0, -1, 2])
    np.testing.assert_array_equal(finest_level_reaching(scores, 0.0), [2, 2, 2, 2])


@pytest.mark.parametrize("q", [1.5, -0.1])
def test_q_outside_0_1_refused_in_one_line_naming_the_value(q):
    scores = np.array([[0.9, 0.7, 0.2], [0.4, 0.2, 0.1]])      # P(error <= R) at 750 / 200 / 25 km
    with pytest.raises(InputError) as raised:
        finest_level_reaching(scores, q)
    message = str(raised.value)
    assert message.startswith(f"q={q}") and "\n" not in message


def test_level_names():
    assert level_names(1) == ("fine",) and level_names(3) == ("coarse", "middle", "fine")
    assert level_names(4) == ("level0", "level1", "level2", "level3")
