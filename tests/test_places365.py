"""§3.2: Places365 category list and scene hierarchy, aggregation 365 -> 16 -> 3."""
import numpy as np
import pytest

from geoest.errors import InputError
from geoest.scene import places365
from geoest.scene.places365 import CONCEPTS, load_scene_hierarchy
from scene_helpers import SYNTHETIC_CATEGORIES, SYNTHETIC_GROUPS, write_places365_files


@pytest.fixture
def synthetic(tmp_path):
    return load_scene_hierarchy(*write_places365_files(tmp_path))


def one_hot(hierarchy, name):
    probs = np.zeros((1, hierarchy.num_categories), np.float32)
    probs[0, hierarchy.categories.index(name)] = 1.0
    return probs


def test_category_in_two_groups_splits_its_probability(synthetic):
    # §3.2: barn is "outdoor, natural" and "outdoor, man-made": half of its probability each.
    barn = one_hot(synthetic, "/b/barn")
    np.testing.assert_allclose(synthetic.aggregate(barn, "S3"), [[0.0, 0.5, 0.5]])
    np.testing.assert_allclose(synthetic.aggregate(barn, "S16"), [[0.0, 0.5, 0.0, 0.5]])
    np.testing.assert_allclose(synthetic.aggregate(barn, "S365"), barn)


def test_every_level_sums_to_one(synthetic):
    probs = np.random.default_rng(0).dirichlet(np.ones(synthetic.num_categories), size=64)
    for level, width in (("S3", 3), ("S16", 4), ("S365", 5)):
        aggregated = synthetic.aggregate(probs, level)
        assert aggregated.shape == (64, width)
        np.testing.assert_allclose(aggregated.sum(axis=1), 1.0, rtol=1e-5)


def test_labels_are_the_argmax_of_summed_probabilities(synthetic):
    # The top category is bedroom (indoor), but coast and barn together make natural the top
    # concept: 0.3 + 0.3 / 2 = 0.45 > 0.4.
    probs = np.zeros((2, 5), np.float32)
    probs[0, [2, 3, 1]] = 0.4, 0.3, 0.3
    probs[1, [0, 4]] = 0.6, 0.4
    labels = synthetic.labels(probs)
    np.testing.assert_array_equal(labels["S365"], [2, 0])
    np.testing.assert_array_equal(labels["S3"], [CONCEPTS.index("natural"),
                                                 CONCEPTS.index("urban")])
    np.testing.assert_array_equal(labels["S16"], [1, 2])


def test_tf_aggregation_matches_numpy(synthetic):
    import tensorflow as tf

    probs = np.random.default_rng(1).dirichlet(np.ones(5), size=8).astype(np.float32)
    aggregate = tf.function(lambda p: synthetic.aggregate_tf(p, "S3"))
    np.testing.assert_allclose(aggregate(tf.constant(probs)).numpy(),
                               synthetic.aggregate(probs, "S3"), rtol=1e-6)
    np.testing.assert_allclose(synthetic.aggregate_tf(probs[0], "S16").numpy(),
                               synthetic.aggregate(probs[0], "S16"), rtol=1e-6)
    labels, labels_tf = synthetic.labels(probs), synthetic.labels_tf(tf.constant(probs))
    for level in ("S3", "S16", "S365"):
        np.testing.assert_array_equal(labels_tf[level].numpy(), labels[level])


def test_hierarchy_rows_are_matched_to_categories_by_name(tmp_path, synthetic):
    shuffled = [(name, *SYNTHETIC_GROUPS[name]) for name in reversed(SYNTHETIC_CATEGORIES)]
    reordered = load_scene_hierarchy(*write_places365_files(tmp_path / "r", rows=shuffled))
    assert reordered.categories == tuple(SYNTHETIC_CATEGORIES)
    np.testing.assert_array_equal(reordered.s3_matrix, synthetic.s3_matrix)
    np.testing.assert_array_equal(reordered.s16_matrix, synthetic.s16_matrix)


def test_files_that_do_not_match_are_an_error(tmp_path):
    rows = [(name, *SYNTHETIC_GROUPS[name]) for name in SYNTHETIC_CATEGORIES]
    renamed = rows[:3] + [("/c/coastline", *rows[3][1:])] + rows[4:]
    with pytest.raises(InputError, match=r"/c/coast.*/c/coastline"):
        load_scene_hierarchy(*write_places365_files(tmp_path / "renamed", rows=renamed))
    with pytest.raises(InputError, match=r"1 categories have no hierarchy row \['/k/kitchen'\]"):
        load_scene_hierarchy(*write_places365_files(tmp_path / "short", rows=rows[:4]))


@pytest.mark.parametrize("rows, message", [
    ([("/a/alley", (0, 0, 2), (0, 0, 1, 0))], r"row 3 \('/a/alley'\).*0 or 1"),
    ([("/a/alley", (0, 0, 0), (0, 0, 1, 0))], r"no S3 group.*/a/alley"),
    ([("/a/alley", (0, 0, 1), (0, 0, 0, 0))], r"no S16 group.*/a/alley"),
])
def test_malformed_hierarchy_names_the_row(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        load_scene_hierarchy(*write_places365_files(tmp_path, rows=rows, categories=["/a/alley"]))


def test_malformed_category_list_names_the_line(tmp_path):
    hierarchy_csv, categories_txt = write_places365_files(tmp_path)
    categories_txt.write_text("/a/alley 0\n/b/barn one\n")
    with pytest.raises(InputError, match=r"line 2.*'/b/barn one'"):
        load_scene_hierarchy(hierarchy_csv, categories_txt)
    categories_txt.write_text("/a/alley 0\n/b/barn 2\n")
    with pytest.raises(InputError, match="indices must be 0..n-1"):
        load_scene_hierarchy(hierarchy_csv, categories_txt)


def test_unknown_level_and_wrong_width_are_errors(synthetic):
    with pytest.raises(InputError, match="S4"):
        synthetic.aggregate(np.ones((1, 5)) / 5, "S4")
    with pytest.raises(InputError, match=r"\[\.\.\., 5\]"):
        synthetic.aggregate(np.ones((1, 365)) / 365, "S3")


def test_official_files(places365_dir):
    h = load_scene_hierarchy(places365_dir / places365.HIERARCHY_FILE,
                             places365_dir / places365.CATEGORIES_FILE)
    assert h.num_categories == 365 and h.s16_matrix.shape == (365, 16)
    assert h.categories[0] == "/a/airfield" and h.categories[-1] == "/z/zen_garden"
    # Group sizes checked in PROVENANCE.md: 159 / 80 / 159 and the 16 level-2 sums.
    np.testing.assert_array_equal((h.s3_matrix > 0).sum(axis=0), [159, 80, 159])
    np.testing.assert_array_equal((h.s16_matrix > 0).sum(axis=0),
                                  [44, 35, 31, 16, 17, 30, 33, 14, 31, 32, 25, 31, 36, 11, 37, 37])
    assert ((h.s3_matrix > 0).sum(axis=1) == 2).sum() == 33
    np.testing.assert_allclose(h.aggregate(one_hot(h, "/b/barn"), "S3"), [[0.0, 0.5, 0.5]])
    for name, concept in (("/b/bedroom", "indoor"), ("/c/coast", "natural"),
                          ("/s/skyscraper", "urban")):
        assert h.labels(one_hot(h, name))["S3"][0] == CONCEPTS.index(concept)
    probs = np.random.default_rng(0).dirichlet(np.full(365, 0.1), size=32)
    for level in ("S3", "S16"):
        np.testing.assert_allclose(h.aggregate(probs, level).sum(axis=1), 1.0, rtol=1e-5)


def test_fetch_into_cache_then_resolve_offline(tmp_path):
    source_csv, source_txt = write_places365_files(tmp_path / "official")
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="--download"):
        places365.resolve_places365_files(cache)
    fetched = places365.fetch_places365_files(
        cache, categories_url=source_txt.as_uri(), hierarchy_url=source_csv.as_uri())
    assert fetched == places365.resolve_places365_files(cache)
    assert fetched[0].read_bytes() == source_csv.read_bytes()
    assert places365.load_default_hierarchy(cache).categories == tuple(SYNTHETIC_CATEGORIES)


def test_failed_download_is_a_clear_error_and_leaves_no_file(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="could not download"):
        places365.fetch_places365_files(cache, categories_url=(tmp_path / "absent").as_uri())
    assert list(cache.iterdir()) == []


def test_scene_label_is_the_argmax_of_known_probabilities_in_numpy_and_tf():
    from geoest.scene.places365 import scene_label, scene_label_tf

    probs3 = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1], [np.nan] * 3, [0.1, np.nan, 0.9],
                       [0.0, np.inf, 0.0], [-1.0, 0.5, 0.5], [0.0, 0.3, 0.7]], np.float32)
    expected = [1, 0, -1, -1, -1, -1, 2]
    np.testing.assert_array_equal(scene_label(probs3), expected)
    assert scene_label(probs3).dtype == np.int64
    np.testing.assert_array_equal(scene_label_tf(probs3).numpy(), expected)
    assert scene_label(np.zeros((0, 3))).shape == (0,)
