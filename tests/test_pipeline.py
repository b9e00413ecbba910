"""geoest.data.pipeline: the training, evaluation and image datasets: labels in file order, bad photos,
determinism, input sharding, counting without decoding."""
import numpy as np
import pytest
import tensorflow as tf

from data_helpers import bad_files, corrupt_jpeg, jpeg_bytes, png_bytes, random_points
from geoest.data import pipeline, records
from geoest.data.skip_log import NO_CELL, NOT_JPEG, TRUNCATED, SkipLog
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
    log = SkipLog()
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
    assert log.counts == {NO_CELL: int((~in_all).sum())}


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


@pytest.fixture(scope="module")
def whole_world():
    lat, lon = random_points(500, seed=5)
    return Partitioning.build(lat, lon, tau_min=0, tau_max=10_000, min_level=0, name="world")


def test_a_shard_with_bad_photos_yields_every_good_one(tmp_path, whole_world):
    lat, lon = random_points(10, seed=8)
    good = {f"good{i}": jpeg_bytes(40, 44, seed=i) for i in range(6)}
    bad = dict(bad_files(), **{"corrupt.jpg": corrupt_jpeg()})
    photos = list(good.items())[:3] + list(bad.items()) + list(good.items())[3:]
    path = _write(tmp_path / "mixed.tfrecord", [
        records.encode_example(data, name, lat[i], lon[i]) for i, (name, data) in
        enumerate(photos)])
    log = SkipLog()
    train = pipeline.train_dataset(path, [whole_world], 4, image_size=SIZE, shuffle_buffer=0,
                                   deterministic=True, repeat=False, skip_log=log)
    assert sum(int(images.shape[0]) for images, _ in train) == len(good)
    assert sorted(log.unreadable) == [("empty.jpg", NOT_JPEG),
                                      ("png.jpg", NOT_JPEG),
                                      ("truncated.jpg", TRUNCATED)]
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
    log = SkipLog()
    batches = list(pipeline.image_dataset(paths, 8, image_size=SIZE, skip_log=log))
    ids = [i.decode() for i in batches[0]["id"].numpy()]
    # A PNG is a photo here, whatever its name; empty and truncated files are not.
    assert ids == [str(tmp_path / name) for name in ("a.jpg", "b.png", "png.jpg")]
    assert batches[0]["crops"].shape == (3, 3, SIZE, SIZE, 3)
    assert sorted(log.unreadable) == [(str(tmp_path / "empty.jpg"), NOT_JPEG),
                                      (str(tmp_path / "truncated.jpg"), TRUNCATED)]


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
