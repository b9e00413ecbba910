"""geoest.scene.statistics: images per concept and ISN training-set sizes (§3.3, §4)."""
import pytest

from geoest.errors import InputError
from geoest.scene import statistics


def test_scene_statistics_counts_probabilities_above_tau_s(tmp_path):
    probs3 = [[0.4, 0.3, 0.3],        # exactly tau_S is not above
              [0.05, 0.31, 0.64],
              [0.0, 0.0, 1.0]]
    assert statistics.scene_statistics([0, 2, 2], probs3) == {
        "count": 3, "tau_s": 0.3,
        "images_per_concept": {"indoor": 1, "natural": 0, "urban": 2},
        "isn_images": {"indoor": 1, "natural": 1, "urban": 2}}
    with pytest.raises(InputError, match=r"row 2: S3 label 3; expected 0 \(indoor\)"):
        statistics.scene_statistics([0, 3, 2], probs3)
    with pytest.raises(InputError, match=r"2 S3 labels but S3 probabilities of shape \(3, 3\)"):
        statistics.scene_statistics([0, 2], probs3)
