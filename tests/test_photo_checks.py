"""How photos are let in: links out of --images_dir, files judged by their first bytes, photos too
small to answer (build_tfrecords, evaluate, label_scenes, predict), strict JPEG decoding
(geoest.data.photo_checks)."""
import pathlib
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from data_helpers import coordinate_image, encode_jpeg, jpeg_bytes, png_bytes
from geoest.photo_paths import OUTSIDE_LINK, link_leaves

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32


@pytest.fixture
def linked(tmp_path):
    """images/ with two photos of its own, a link to a photo outside it, a link to a folder outside
    it, a link inside it and a dangling link; and the meta CSV of all of them."""
    images, outside = tmp_path / "images", tmp_path / "outside"
    (images / "sub").mkdir(parents=True)
    (outside / "folder").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.jpg"):
        (images / name).write_bytes(jpeg_bytes(24, 32, seed=1))
    (outside / "secret.jpg").write_bytes(jpeg_bytes(24, 32, seed=2))
    (outside / "folder" / "c.jpg").write_bytes(jpeg_bytes(24, 32, seed=3))
    (images / "out.jpg").symlink_to(outside / "secret.jpg")
    (images / "linked_folder").symlink_to(outside / "folder", target_is_directory=True)
    (images / "inside.jpg").symlink_to(images / "sub" / "b.jpg")      # stays inside: always read
    (images / "dangling.jpg").symlink_to(outside / "gone.jpg")
    ids = ["a.jpg", "sub/b.jpg", "inside.jpg", "out.jpg", "linked_folder/c.jpg", "dangling.jpg"]
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{i},10,20\n" for i in ids))
    return images, meta


def _main(module, *args):
    """Runs `python -m module args` to its end; it must succeed."""
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _record_ids(folder):
    import tensorflow as tf

    from geoest.data import records

    files = sorted(str(p) for p in pathlib.Path(folder).glob("*.tfrecord"))
    return {records.parse_example(r)[records.IMAGE_ID].numpy().decode() for r in tf.data.TFRecordDataset(files)}


def test_link_leaves_judges_every_link_on_the_way(linked, tmp_path):
    images, _ = linked
    assert not link_leaves(images, images / "a.jpg") and not link_leaves(images, images / "inside.jpg")
    assert link_leaves(images, images / "out.jpg") and link_leaves(images, images / "linked_folder" / "c.jpg")
    assert link_leaves(images, images / "dangling.jpg")         # its target would be outside
    alias = tmp_path / "alias"
    alias.symlink_to(images, target_is_directory=True)         # the folder itself a link: its photos are inside
    assert not link_leaves(alias, alias / "sub" / "b.jpg") and link_leaves(alias, alias / "out.jpg")


def test_build_refuses_links_out_of_images_dir_unless_followed(linked, tmp_path):
    from geoest.data import build

    images, meta = linked
    summary = build.build_tfrecords(images, meta, tmp_path / "out", num_shards=2, workers=1, progress=False)
    assert _record_ids(tmp_path / "out") == {"a.jpg", "sub/b.jpg", "inside.jpg"}
    assert sorted(summary.skipped[OUTSIDE_LINK]) == ["dangling.jpg", "linked_folder/c.jpg", "out.jpg"]
    assert summary.links_followed == 0 and "out.jpg" in summary.report()

    followed = build.build_tfrecords(images, meta, tmp_path / "followed", num_shards=2, workers=1,
                                     progress=False, follow_links=True)
    assert _record_ids(tmp_path / "followed") == {"a.jpg", "sub/b.jpg", "inside.jpg", "out.jpg", "linked_folder/c.jpg"}
    assert dict(followed.skipped) == {build.MISSING: ["dangling.jpg"]}
    assert followed.links_followed == 2 and "read 2 through links out of images_dir" in followed.report()
    resumed = build.build_tfrecords(images, meta, tmp_path / "followed", num_shards=2, workers=1,
                                    progress=False, follow_links=True)
    assert resumed.resumed_shards == 2 and resumed.links_followed == 2      # counted from the build log


@pytest.mark.slow
def test_build_tfrecords_main_takes_follow_links(linked, tmp_path):
    images, meta = linked
    args = ["geoest.build_tfrecords", f"--images_dir={images}", f"--meta_csv={meta}", "--num_shards=1", "--workers=1"]
    assert f"3 skipped, {OUTSIDE_LINK}" in _main(*args, f"--output_dir={tmp_path / 'a'}").stdout
    followed = _main(*args, f"--output_dir={tmp_path / 'b'}", "--follow_links")
    assert "read 2 through links out of images_dir" in followed.stdout


def test_evaluation_batches_refuse_links_out_unless_followed(linked):
    from geoest.data.skip_log import SkipLog
    from geoest.inference.batches import MISSING, image_batches

    images, meta = linked
    log = SkipLog()
    batches = list(image_batches(images, meta, 8, SIZE, skip_log=log))
    assert sorted(i for b in batches for i in b["id"]) == ["a.jpg", "inside.jpg", "sub/b.jpg"]
    assert sorted(log.unreadable) == [(i, OUTSIDE_LINK) for i in ("dangling.jpg", "linked_folder/c.jpg", "out.jpg")]
    assert log.links_followed == 0

    log = SkipLog()
    batches = list(image_batches(images, meta, 8, SIZE, skip_log=log, follow_links=True))
    assert sorted(i for b in batches for i in b["id"]) == ["a.jpg", "inside.jpg", "linked_folder/c.jpg",
                                                          "out.jpg", "sub/b.jpg"]
    assert log.unreadable == [("dangling.jpg", MISSING)] and log.links_followed == 2


def test_label_scenes_refuses_links_out_unless_followed(linked, tmp_path, places365_dir):
    from geoest.data.meta_csv import read_meta_csv
    from geoest.scene import labeler, places365
    from scene_helpers import read_rows, save_stand_in_model

    images, meta = linked
    model = save_stand_in_model(tmp_path / "scene.keras", 365)
    hierarchy = places365.load_default_hierarchy(places365_dir)
    rows = read_meta_csv(meta, scene=False)
    summary = labeler.label_images(model, hierarchy, images, rows, tmp_path / "refused.csv", preprocess="tf",
                                   batch_size=4, workers=1)
    assert [r[0] for r in read_rows(tmp_path / "refused.csv")[1:]] == ["a.jpg", "sub/b.jpg", "inside.jpg"]
    assert sorted(summary.failed) == [(i, OUTSIDE_LINK) for i in ("dangling.jpg", "linked_folder/c.jpg", "out.jpg")]
    assert sorted(r[0] for r in read_rows(summary.errors_csv)[1:]) == ["dangling.jpg", "linked_folder/c.jpg", "out.jpg"]

    followed = labeler.label_images(model, hierarchy, images, rows, tmp_path / "followed.csv", preprocess="tf",
                                    batch_size=4, workers=1, follow_links=True)
    assert followed.labeled == 5 and followed.links_followed == 2
    assert [i for i, _ in followed.failed] == ["dangling.jpg"]


def test_files_are_judged_by_their_first_bytes_never_read_whole(tmp_path):
    """A 256 MB file named .jpg that is no image is refused from its first four bytes (build and
    evaluate/predict); Python's allocations stay far below its size."""
    from geoest.data import build
    from geoest.data.photo_checks import photo_problem
    from geoest.data.skip_log import NOT_JPEG, UNOPENABLE

    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(256 << 20)                   # sparse: nothing written to disk
    tracemalloc.start()
    try:
        assert build.prepare_image(big) == (None, f"{build.NOT_JPEG} (unknown format)")
        assert photo_problem(big, min_side=8) == NOT_JPEG
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (1 << 20), peak
    (tmp_path / "png.jpg").write_bytes(png_bytes(20, 30))
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert build.prepare_image(tmp_path / "png.jpg") == (None, f"{build.NOT_JPEG} (PNG)")
    assert build.prepare_image(tmp_path / "empty.jpg") == (None, build.EMPTY)
    assert photo_problem(tmp_path / "png.jpg") is None        # image_dataset reads PNGs
    assert photo_problem(tmp_path / "empty.jpg") == NOT_JPEG
    assert photo_problem(tmp_path / "missing.jpg") == UNOPENABLE


def test_photos_below_min_side_are_skipped_and_named(tmp_path):
    from geoest.data.photo_checks import default_min_side
    from geoest.data.pipeline import image_dataset
    from geoest.data.skip_log import SkipLog, small_reason
    from geoest.inference.batches import image_batches

    sizes = {"tiny.jpg": (1, 1), "strip.jpg": (200, 7), "edge.jpg": (8, 40), "photo.jpg": (24, 32)}
    for name, (height, width) in sizes.items():
        (tmp_path / name).write_bytes(jpeg_bytes(height, width, seed=4))
    paths = [str(tmp_path / name) for name in sizes]
    assert default_min_side(224) == 56 and default_min_side(SIZE) == 8

    log = SkipLog()
    (batch,) = list(image_dataset(paths, 8, image_size=SIZE, skip_log=log, min_side=8).as_numpy_iterator())
    assert [pathlib.Path(p.decode()).name for p in batch["id"]] == ["edge.jpg", "photo.jpg"]
    assert sorted(log.unreadable) == sorted((str(tmp_path / n), small_reason(8)) for n in ("tiny.jpg", "strip.jpg"))
    (batch,) = list(image_dataset(paths, 8, image_size=SIZE, min_side=0).as_numpy_iterator())
    assert len(batch["id"]) == 4                                      # 0 answers any size
    log = SkipLog()
    assert list(image_dataset(paths[:2], 8, image_size=SIZE, skip_log=log, min_side=8).as_numpy_iterator()) == []
    assert log.counts[small_reason(8)] == 2

    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{n},10,20\n" for n in sizes))
    log = SkipLog()                                                   # evaluate's default: SIZE // 4
    batches = list(image_batches(tmp_path, meta, 8, SIZE, skip_log=log))
    assert sorted(i for b in batches for i in b["id"]) == ["edge.jpg", "photo.jpg"]
    assert log.counts[small_reason(8)] == 2
    batches = list(image_batches(tmp_path, meta, 8, SIZE, skip_log=SkipLog(), min_side=30))
    assert [i for b in batches for i in b["id"]] == []                # none has a shorter side of 30 px


@pytest.fixture
def model_dir(tmp_path):
    import inference_helpers as helpers

    parts = helpers.partitionings(1500)
    path = tmp_path / "base_M"
    helpers.save_model_dir(helpers.tiny_model({p.name: len(p) for p in parts}, SIZE), parts, path)
    return path


def test_predict_names_a_tiny_photo_and_a_file_of_another_kind(model_dir, tmp_path):
    """A 1x1 JPEG is not answered (the default --min_side, SIZE // 4 = 8 px); a file that is no
    image is refused by its first bytes; the photo beside them is located."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "photo.jpg").write_bytes(jpeg_bytes(40, 56, seed=1))
    (photos / "tiny.jpg").write_bytes(jpeg_bytes(1, 1, seed=2))
    (photos / "archive.jpg").write_bytes(b"PK\x03\x04" + bytes(4096))
    result = _main("geoest.predict", f"--model_dir={model_dir}", f"--images={photos}", f"--output={tmp_path / 'p.csv'}")
    assert "1 photos located" in result.stdout and "2 unreadable" in result.stdout
    assert f"unreadable, skipped: {photos / 'tiny.jpg'} (shorter side below 8 px (--min_side))" in result.stderr
    assert f"unreadable, skipped: {photos / 'archive.jpg'} (not a JPEG" in result.stderr
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(str(photos / "photo.jpg"))


@pytest.mark.slow
def test_evaluate_main_counts_the_links_it_followed(linked, model_dir, tmp_path):
    images, meta = linked
    args = ["geoest.evaluate", f"--model_dir={model_dir}", f"--images_dir={images}", f"--meta_csv={meta}",
            "--max_skipped=1"]
    refused = _main(*args, f"--output_dir={tmp_path / 'a'}")
    assert f"3 test photos scored, 3 skipped: 3 {OUTSIDE_LINK}" in refused.stdout
    followed = _main(*args, f"--output_dir={tmp_path / 'b'}", "--follow_links")
    assert "5 test photos scored, 1 skipped: 1 missing file" in followed.stdout
    assert "read 2 photo(s) through links out of --images_dir (--follow_links)" in followed.stdout


def test_strict_decoding_flags_corrupt_data_instead_of_raising():
    import tensorflow as tf

    from geoest.data.photo_checks import decode_jpeg_strict

    good = encode_jpeg(coordinate_image(48, 64))
    start = good.find(b"\xff\xda") + 20
    body = np.frombuffer(good[start:-2], np.uint8).copy()
    np.random.default_rng(0).shuffle(body)
    corrupt = good[:start] + body.tobytes() + good[-2:]        # markers intact, entropy data garbage
    calls = []
    image, decoded = decode_jpeg_strict(tf.constant(good), lambda: calls.append(1))
    assert bool(decoded) and image.shape == (48, 64, 3) and not calls
    image, decoded = decode_jpeg_strict(tf.constant(corrupt), lambda: calls.append(1))
    assert not bool(decoded) and image.shape == (1, 1, 3) and calls == [1]
