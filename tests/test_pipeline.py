"""geoest.data.pipeline: labels, §4 augmentation, §3.4 three crops, ISN filter, bad photos."""
import numpy as np
import pytest
import tensorflow as tf

from data_helpers import (bad_files, coordinate_image, corrupt_jpeg, encode_jpeg, jpeg_bytes,
                          png_bytes, random_points)
from geoest.data import pipeline, records
from geoest.geo import Partitioning

SIZE = 32


def _write(path, examples):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for serialized in examples:
            writer.write(serialized)
    return str(path)


@pytest.fixture(scope="module")
def geo_records(tmp_path_factory):
    """300 tiny photos at clustered coordinates, two partitionings built from 2000 points."""
    folder = tmp_path_factory.mktemp("geo")
    lat, lon = random_points(2000, seed=1)
    coarse = Partitioning.build(lat, lon, tau_min=20, tau_max=400, name="coarse")
    fine = Partitioning.build(lat, lon, tau_min=20, tau_max=100, name="fine")
    test_lat, test_lon = random_points(300, seed=2)
    test_lat[:20] = np.random.default_rng(3).uniform(-60, 60, 20)      # mostly in no cell
    test_lon[:20] = np.random.default_rng(4).uniform(-170, 170, 20)
    image = jpeg_bytes(40, 48)
    path = _write(folder / "geo.tfrecord", [
        records.encode_example(image, f"img{i}", test_lat[i], test_lon[i])
        for i in range(len(test_lat))])
    return path, [coarse, fine], test_lat, test_lon


def test_training_labels_equal_partitioning_assign(geo_records):
    path, partitionings, lat, lon = geo_records
    expected = {p.name: p.assign(lat, lon) for p in partitionings}
    in_all = np.all([expected[p.name] >= 0 for p in partitionings], axis=0)
    assert 0 < in_all.sum() < len(lat)
    log = pipeline.SkipLog()
    ds = pipeline.train_dataset(path, partitionings, 16, image_size=SIZE, shuffle_buffer=0,
                                deterministic=True, repeat=False, skip_log=log)
    got = {p.name: [] for p in partitionings}
    for images, labels in ds:
        assert images.shape[1:] == (SIZE, SIZE, 3) and images.dtype == tf.uint8
        for name, value in labels.items():
            assert value.dtype == tf.int64
            got[name].extend(value.numpy().tolist())
    for p in partitionings:                    # file order kept: the same sequence
        assert got[p.name] == expected[p.name][in_all].tolist()
    assert log.counts == {pipeline.NO_CELL: int((~in_all).sum())}


def test_eval_labels_keep_photos_in_no_cell(geo_records):
    path, partitionings, lat, lon = geo_records
    ds = pipeline.eval_dataset(path, 64, image_size=SIZE, partitionings=partitionings)
    batches = list(ds)
    ids = np.concatenate([b["id"].numpy() for b in batches])
    assert ids.tolist() == [f"img{i}".encode() for i in range(len(lat))]
    np.testing.assert_allclose(np.concatenate([b["lat"].numpy() for b in batches]), lat,
                               atol=1e-4)
    for p in partitionings:
        got = np.concatenate([b[p.name].numpy() for b in batches])
        np.testing.assert_array_equal(got, p.assign(lat, lon))
    assert batches[0]["crops"].shape == (64, 3, SIZE, SIZE, 3)
    assert batches[0]["crops"].dtype == tf.uint8
    assert np.isnan(batches[0]["probs3"].numpy()).all()


@pytest.mark.parametrize("height, width", [(64, 128), (128, 64), (80, 80), (48, 100)])
def test_three_crops_lie_at_start_middle_and_end_of_the_longer_side(height, width):
    crops = pipeline.three_crops(tf.constant(coordinate_image(height, width)), SIZE).numpy()
    assert crops.dtype == np.uint8 and crops.shape == (3, SIZE, SIZE, 3)
    scale = SIZE / min(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    slack = max(new_h, new_w) - SIZE
    for crop, offset in zip(crops, (0, slack // 2, slack)):
        # Pixel values encode source coordinates; map the crop's centre pixel back.
        red, green = crop[SIZE // 2, SIZE // 2, :2].astype(np.float64)
        x_resized = (red / 255 * (width - 1) + 0.5) / (width / new_w) - 0.5
        y_resized = (green / 255 * (height - 1) + 0.5) / (height / new_h) - 0.5
        offset_y, offset_x = (offset, 0) if new_h > new_w else (0, offset)
        assert x_resized == pytest.approx(offset_x + SIZE // 2, abs=1.0)
        assert y_resized == pytest.approx(offset_y + SIZE // 2, abs=1.0)
    if height == width:
        np.testing.assert_array_equal(crops[0], crops[2])


@pytest.mark.parametrize("height, width", [(320, 427), (427, 320), (300, 300), (200, 260)])
def test_crop_windows_cover_70_to_100_percent_at_allowed_aspect(height, width):
    areas, aspects = [], []
    for k in range(200):
        offset_y, offset_x, h, w = pipeline.sample_crop_window(
            tf.constant([height, width, 3]), tf.constant([k, 7])).numpy()
        assert 0 <= offset_y and offset_y + h <= height and 0 <= offset_x and offset_x + w <= width
        areas.append(h * w / (height * width))
        aspects.append(w / h)
    assert min(areas) >= 0.7 - 1e-6 and max(areas) <= 1.0
    # Whole pixels: allow one pixel of rounding on the aspect bounds.
    assert min(aspects) >= 3 / 4 - 1.5 / min(height, width)
    assert max(aspects) <= 4 / 3 + 1.5 / min(height, width)
    assert max(areas) - min(areas) > 0.15            # it does vary


@pytest.mark.parametrize("height, width", [(160, 200), (200, 160)])
def test_training_image_is_a_flipped_or_plain_crop_in_range(height, width):
    encoded = tf.constant(encode_jpeg(coordinate_image(height, width)))
    flips = []
    for k in range(40):
        image, decoded = pipeline.train_image(encoded, tf.constant([k, 1], tf.int64), SIZE)
        image = image.numpy()
        assert bool(decoded) and image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3)
        xs = image[SIZE // 2, [0, -1], 0].astype(np.float64) / 255 * (width - 1)
        ys = image[[0, -1], SIZE // 2, 1].astype(np.float64) / 255 * (height - 1)
        flips.append(xs[0] > xs[1])
        # Output pixel centres 0 and SIZE-1 span (SIZE-1)/SIZE of the crop.
        crop_w = abs(xs[1] - xs[0]) * SIZE / (SIZE - 1)
        crop_h = (ys[1] - ys[0]) * SIZE / (SIZE - 1)
        area = crop_w * crop_h / (height * width)
        assert 0.7 - 0.04 <= area <= 1.0 + 0.03
        assert 3 / 4 - 0.05 <= crop_w / crop_h <= 4 / 3 + 0.05
    assert any(flips) and not all(flips)


def _scene_records(path, n, probs3=None, probs365_from=None):
    """Record i carries a one-hot S365 at i, so the S365 label names the record."""
    lat, lon = random_points(n, seed=5)
    image = jpeg_bytes(36, 40)
    return _write(path, [records.encode_example(
        image, f"img{i}", lat[i], lon[i], probs365=np.eye(365)[i] if probs365_from is None
        else probs365_from[i], probs3=None if probs3 is None else probs3[i]) for i in range(n)])


@pytest.fixture(scope="module")
def whole_world():
    lat, lon = random_points(500, seed=5)
    return Partitioning.build(lat, lon, tau_min=0, tau_max=10_000, min_level=0, name="world")


@pytest.mark.parametrize("concept", ["indoor", "urban"])
def test_isn_filter_keeps_exactly_the_photos_above_tau_s(tmp_path, whole_world, concept):
    n = 200
    probs3 = np.random.default_rng(6).dirichlet(np.ones(3), n).astype(np.float32)
    probs3[:4, 2] = [0.3, 0.30001, 0.29999, 0.31]          # at the threshold
    probs3[:4, 0] = [0.3, 0.30001, 0.29999, 0.31]
    path = _scene_records(tmp_path / "scene.tfrecord", n, probs3=probs3)
    log = pipeline.SkipLog()
    ds = pipeline.train_dataset(path, [whole_world], 8, image_size=SIZE, scene_level="S365",
                                concept=concept, tau_s=0.3, shuffle_buffer=0,
                                deterministic=True, repeat=False, skip_log=log)
    kept = np.concatenate([labels["scene"].numpy() for _, labels in ds])
    above = np.flatnonzero(probs3[:, pipeline.CONCEPTS.index(concept)] > np.float32(0.3))
    assert kept.tolist() == above.tolist()
    assert log.counts == {pipeline.BELOW_TAU_S: n - len(above)}


def test_isn_filter_derives_probs3_from_probs365(tmp_path, whole_world):
    rng = np.random.default_rng(7)
    s3_matrix = rng.random((365, 3)).astype(np.float32)
    s3_matrix /= s3_matrix.sum(axis=1, keepdims=True)
    s16_matrix = rng.random((365, 16)).astype(np.float32)
    s16_matrix /= s16_matrix.sum(axis=1, keepdims=True)
    probs365 = rng.dirichlet(np.full(365, 0.05), 120).astype(np.float32)
    path = _scene_records(tmp_path / "scene.tfrecord", 120, probs365_from=probs365)
    matrices = {"S3": s3_matrix, "S16": s16_matrix}
    ds = pipeline.train_dataset(path, [whole_world], 8, image_size=SIZE, scene_level="S16",
                                concept="natural", scene_matrices=matrices, shuffle_buffer=0,
                                deterministic=True, repeat=False)
    kept = np.concatenate([labels["scene"].numpy() for _, labels in ds])
    above = (probs365 @ s3_matrix)[:, 1] > 0.3
    assert 0 < above.sum() < len(above)
    np.testing.assert_array_equal(kept, np.argmax(probs365 @ s16_matrix, axis=1)[above])


def test_a_shard_with_bad_photos_yields_every_good_one(tmp_path, whole_world):
    lat, lon = random_points(10, seed=8)
    good = {f"good{i}": jpeg_bytes(40, 44, seed=i) for i in range(6)}
    bad = dict(bad_files(), **{"corrupt.jpg": corrupt_jpeg()})
    photos = list(good.items())[:3] + list(bad.items()) + list(good.items())[3:]
    path = _write(tmp_path / "mixed.tfrecord", [
        records.encode_example(data, name, lat[i], lon[i]) for i, (name, data) in
        enumerate(photos)])
    log = pipeline.SkipLog()
    train = pipeline.train_dataset(path, [whole_world], 4, image_size=SIZE, shuffle_buffer=0,
                                   deterministic=True, repeat=False, skip_log=log)
    assert sum(int(images.shape[0]) for images, _ in train) == len(good)
    assert sorted(log.unreadable) == [("empty.jpg", pipeline.NOT_JPEG),
                                      ("png.jpg", pipeline.NOT_JPEG),
                                      ("truncated.jpg", pipeline.TRUNCATED)]
    evaluation = pipeline.eval_dataset(path, 4, image_size=SIZE)
    ids = [i.decode() for batch in evaluation for i in batch["id"].numpy()]
    assert ids == list(good)


def test_deterministic_runs_repeat_exactly(geo_records):
    path, partitionings, _, _ = geo_records

    def first_batches(seed):
        ds = pipeline.train_dataset(path, partitionings, 8, image_size=SIZE,
                                    shuffle_buffer=50, deterministic=True, seed=seed)
        return [(images.numpy(), labels["fine"].numpy()) for images, labels in ds.take(3)]

    a, b, c = first_batches(1), first_batches(1), first_batches(2)
    for (images_a, labels_a), (images_b, labels_b) in zip(a, b):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_input_context_shards_files_and_splits_the_batch(tmp_path, whole_world):
    lat, lon = random_points(12, seed=9)
    image = jpeg_bytes(36, 40)
    for shard in range(4):
        _write(tmp_path / f"s-{shard}.tfrecord", [
            records.encode_example(image, f"{shard}-{i}", lat[i], lon[i]) for i in range(3)])
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    ds = pipeline.train_dataset(str(tmp_path / "s-*.tfrecord"), [whole_world], 4,
                                image_size=SIZE, repeat=False, input_context=context)
    sizes = [int(images.shape[0]) for images, _ in ds]
    assert max(sizes) == 2 and sum(sizes) == 6            # 2 of 4 files, per-replica batch 2


def test_image_dataset_reads_files_and_names_the_bad(tmp_path):
    files = {"a.jpg": jpeg_bytes(50, 70), "b.png": png_bytes(60, 40), **bad_files()}
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    log = pipeline.SkipLog()
    batches = list(pipeline.image_dataset(paths, 8, image_size=SIZE, skip_log=log))
    ids = [i.decode() for i in batches[0]["id"].numpy()]
    # A PNG is a photo here, whatever its name; empty and truncated files are not.
    assert ids == [str(tmp_path / name) for name in ("a.jpg", "b.png", "png.jpg")]
    assert batches[0]["crops"].shape == (3, 3, SIZE, SIZE, 3)
    assert sorted(log.unreadable) == [(str(tmp_path / "empty.jpg"), pipeline.NOT_JPEG),
                                      (str(tmp_path / "truncated.jpg"), pipeline.TRUNCATED)]


def test_mtn_scene_targets_from_hard_labels_at_any_level(tmp_path, whole_world):
    """The published meta's S16_Label / S365_Label train an MTN without probabilities or the Places365
    hierarchy; a stored label wins over probabilities; photos with neither are dropped and counted."""
    n = 40
    lat, lon = random_points(n, seed=9)
    rng = np.random.default_rng(10)
    labels = np.stack([rng.integers(0, 3, n), rng.integers(0, 16, n), rng.integers(0, 365, n)], axis=1)
    labels[:5] = -1                                     # no labels: dropped at S16
    probs3 = np.tile(np.float32([0.1, 0.2, 0.7]), (n, 1))
    path = _write(tmp_path / "labels.tfrecord", [records.encode_example(
        jpeg_bytes(36, 40), f"img{i}", lat[i], lon[i], probs3=probs3[i], scene_labels=labels[i]) for i in range(n)])
    for level, column in (("S3", 0), ("S16", 1), ("S365", 2)):
        log = pipeline.SkipLog()
        ds = pipeline.train_dataset(path, [whole_world], 8, image_size=SIZE, scene_level=level, shuffle_buffer=0,
                                    deterministic=True, repeat=False, skip_log=log)
        kept = np.concatenate([targets["scene"].numpy() for _, targets in ds])
        # S3 falls back on the probabilities (urban, 2) where no label is stored.
        expected = np.where(labels[:, column] >= 0, labels[:, column], 2) if level == "S3" else labels[5:, column]
        np.testing.assert_array_equal(kept, expected)
        assert log.counts == ({} if level == "S3" else {pipeline.NO_SCENE: 5})
    evaluated = np.concatenate([b["scene_labels"] for b in pipeline.eval_dataset(path, 16, image_size=SIZE)
                                .as_numpy_iterator()])
    np.testing.assert_array_equal(evaluated[5:], labels[5:])
    np.testing.assert_array_equal(evaluated[:5], [[2, -1, -1]] * 5)


@pytest.mark.parametrize("options", [{}, {"concept": "urban"}, {"scene_level": "S16"}])
def test_image_count_from_the_records_equals_the_decoded_count(tmp_path, geo_records, options):
    """`count_only` reads, labels and filters the records without decoding a photo: the same number as
    one decoded pass (photos in no cell, below tau_S, without a scene label and unreadable ones left out)."""
    _, partitionings, lat, lon = geo_records
    rng = np.random.default_rng(11)
    n = len(lat)
    probs3 = rng.dirichlet(np.ones(3), n).astype(np.float32)
    s16 = np.where(rng.random(n) < 0.2, -1, rng.integers(0, 16, n))
    photos = [jpeg_bytes(40, 48, seed=i % 5) for i in range(n)]
    for i, data in enumerate(bad_files().values()):
        photos[30 + i] = data
    path = _write(tmp_path / "count.tfrecord", [records.encode_example(
        photos[i], f"img{i}", lat[i], lon[i], probs3=probs3[i], scene_labels=[-1, s16[i], -1]) for i in range(n)])
    kwargs = dict(image_size=SIZE, shuffle_buffer=0, deterministic=True, repeat=False, **options)
    counted = pipeline.train_dataset(path, partitionings, 16, count_only=True, **kwargs)
    decoded = sum(int(images.shape[0]) for images, _ in pipeline.train_dataset(path, partitionings, 16, **kwargs))
    assert counted == decoded and 0 < counted < n - 3


def test_strict_decoding_flags_corrupt_data_instead_of_raising():
    good = encode_jpeg(coordinate_image(48, 64))
    start = good.find(b"\xff\xda") + 20
    body = np.frombuffer(good[start:-2], np.uint8).copy()
    np.random.default_rng(0).shuffle(body)
    corrupt = good[:start] + body.tobytes() + good[-2:]        # markers intact, entropy data garbage
    calls = []
    image, decoded = pipeline.decode_jpeg_strict(tf.constant(good), lambda: calls.append(1))
    assert bool(decoded) and image.shape == (48, 64, 3) and not calls
    image, decoded = pipeline.decode_jpeg_strict(tf.constant(corrupt), lambda: calls.append(1))
    assert not bool(decoded) and image.shape == (1, 1, 3) and calls == [1]
