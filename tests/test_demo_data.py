"""The demo dataset generator: deterministic, resumable, shaped like a photo collection, learnable."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geoest.demo import cities, data
from geoest.geo.landmask import is_land
from geoest.geo import great_circle_km
from geoest.scene.columns import META_COLUMNS


def _files(root):
    return {p.name: p.read_bytes() for p in sorted((root / "images").iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return data.generate(root, num_images=40, seed=3, image_size=32, progress=False)


def test_writes_im2gps_meta_and_jpegs(small):
    assert sum(small.num_images.values()) == 40
    for split, path in small.meta_csv.items():
        meta = pd.read_csv(path)
        assert tuple(meta.columns) == META_COLUMNS
        assert len(meta) == small.num_images[split]
        probs = meta[["Prob_indoor", "Prob_natural", "Prob_urban"]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=2e-4)
        np.testing.assert_array_equal(meta["S3_Label"], probs.argmax(axis=1))
        assert meta["S16_Label"].between(0, 15).all() and meta["S365_Label"].between(0, 364).all()
        for image_id in meta["IMG_ID"]:
            with Image.open(small.image_dir / image_id) as image:
                assert image.format == "JPEG" and min(image.size) == 32
                assert max(image.size) == round(32 * 4 / 3)


def test_same_seed_same_files_other_seed_other_files(small, tmp_path):
    again = data.generate(tmp_path / "again", num_images=40, seed=3, image_size=32, progress=False)
    assert _files(again.root) == _files(small.root)
    for split in data.SPLITS:
        assert again.meta_csv[split].read_bytes() == small.meta_csv[split].read_bytes()
    other = data.generate(tmp_path / "other", num_images=40, seed=4, image_size=32, progress=False)
    assert other.meta_csv["train"].read_bytes() != small.meta_csv["train"].read_bytes()


def test_resumes_and_regenerates_when_settings_change(small, tmp_path):
    root = tmp_path / "resume"
    data.generate(root, num_images=40, seed=3, image_size=32, progress=False)
    removed = [p for p in sorted((root / "images").iterdir())[::3] if p.name != "train_000000.jpg"]
    for path in removed:
        path.unlink()
    (root / "images" / "train_000000.jpg").write_bytes(b"kept: not rewritten on resume")
    data.generate(root, num_images=40, seed=3, image_size=32, progress=False)
    resumed = _files(root)
    assert resumed["train_000000.jpg"] == b"kept: not rewritten on resume"
    expected = _files(small.root)
    assert all(resumed[p.name] == expected[p.name] for p in removed)
    # Another seed in the same folder must not reuse photos painted for the old one.
    data.generate(root, num_images=40, seed=4, image_size=32, progress=False)
    assert _files(root)["train_000000.jpg"] != b"kept: not rewritten on resume"


def test_photos_cluster_around_cities_on_land_on_every_continent():
    photos = data.sample_photos(20000, seed=0, split="train")
    assert is_land(photos.lat_deg, photos.lon_deg).all()
    dist_km = great_circle_km(photos.lat_deg[:, None], photos.lon_deg[:, None],
                              cities.LAT_DEG[None, :], cities.LON_DEG[None, :]).min(axis=1)
    # Dense around cities, sparse elsewhere: ~80 % within a city's reach, some far from all.
    assert 0.7 < np.mean(dist_km < 25) < 0.9
    assert np.mean(dist_km > 100) > 0.05
    assert set(cities.CONTINENT[photos.city]) == set(range(len(cities.CONTINENTS)))
    # Popular cities get more photos than regional capitals.
    per_city = np.bincount(photos.city[photos.at_city], minlength=len(cities.CITIES))
    assert per_city[cities.POPULARITY == 3].mean() > 2 * per_city[cities.POPULARITY == 1].mean()
    # Every concept occurs; city photos are mostly urban, the others mostly natural.
    assert np.bincount(photos.scene[photos.at_city], minlength=3).argmax() == data.URBAN
    assert np.bincount(photos.scene[~photos.at_city], minlength=3).argmax() == data.NATURAL


def _mean_colours(city_of_photo, scene, seed):
    colours = []
    for i, city in enumerate(city_of_photo):
        rng = np.random.default_rng([seed, i])
        colours.append(data.render(rng, 32, 40, city, True, scene).reshape(-1, 3).mean(axis=0))
    return np.array(colours)


def test_continent_palette_is_a_learnable_cue():
    rng = np.random.default_rng(0)
    train_cities, test_cities = rng.choice(len(cities.CITIES), (2, 240))
    train = _mean_colours(train_cities, data.URBAN, seed=1)
    test = _mean_colours(test_cities, data.URBAN, seed=2)
    labels = cities.CONTINENT[train_cities]
    centroids = np.array([train[labels == c].mean(axis=0) for c in range(len(cities.CONTINENTS))])
    guess = np.linalg.norm(test[:, None] - centroids[None], axis=-1).argmin(axis=1)
    assert np.mean(guess == cities.CONTINENT[test_cities]) > 0.6  # chance: 1/6


def test_city_motifs_are_distinct_and_survive_flips():
    # Cities of one region share palette and texture; their motifs tell them apart.
    yy, xx = np.mgrid[-12:13, -12:13].astype(np.float32)
    masks = [data._motif_mask(m, yy, xx, 10.0) for m in range(len(data.MOTIFS))]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            iou = (masks[i] & masks[j]).sum() / (masks[i] | masks[j]).sum()
            assert iou < 0.8, (data.MOTIFS[i], data.MOTIFS[j], iou)
    for mask in masks:  # the §4 augmentation flips left-right: every motif stays itself
        np.testing.assert_array_equal(mask, mask[:, ::-1])
    region = np.flatnonzero(cities.REGION == cities.REGION[0])
    assert len(set(cities.CITY_IN_REGION[region])) == len(region)


def test_scene_labels_follow_the_places365_hierarchy(places365_dir, small):
    from geoest.scene.places365 import load_scene_hierarchy

    hierarchy = load_scene_hierarchy(places365_dir / "scene_hierarchy_places365.csv",
                                     places365_dir / "categories_places365.txt")
    for concept, categories in data.SCENE_CATEGORIES.items():
        for s365, s16 in categories:
            assert hierarchy.s3_matrix[s365, concept] > 0       # §3.2: the category is of that concept
            assert hierarchy.s16_matrix[s365, s16] > 0
    meta = pd.concat([pd.read_csv(p) for p in small.meta_csv.values()])
    assert (hierarchy.s3_matrix[meta["S365_Label"], meta["S3_Label"]] > 0).all()
