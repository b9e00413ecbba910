"""Nothing silently wrong, nothing lost: broken and unusual inputs either give exactly what the
command says, from exactly its inputs, or one line naming the file, row or value (exit status 2),
with the user's files left as they were. docs/guarantees.md cites these tests."""
import csv
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys

import pytest

import inference_helpers as helpers
from data_helpers import jpeg_bytes
from geoest.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
PER_SHARD = 1000


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(REPO)))


def _one_line_error(result, *needles):
    """Exit status 2 and one `error:` line (TensorFlow's own start-up lines aside), naming the needles."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    for needle in needles:
        assert str(needle) in errors[0], errors[0]
    return errors[0]


def _write_shard(path, ids, lat, lon):
    import tensorflow as tf

    from geoest.data import records

    with tf.io.TFRecordWriter(str(path)) as writer:
        for k, image_id in enumerate(ids):
            writer.write(records.encode_example(jpeg_bytes(24, 32, seed=k % 7), image_id, float(lat[k]),
                                                float(lon[k])))


def _record_ends(path) -> list:
    """Byte offset of the end of each record of a TFRecord file (its framing, read with struct)."""
    data, ends, offset = pathlib.Path(path).read_bytes(), [], 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        offset += 16 + length
        ends.append(offset)
    return ends


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny trained-format model dir and two test sets of TFRecords: three shards (two good, one
    with a byte flipped a third of the way in) and a small other set."""
    root = tmp_path_factory.mktemp("reliability")
    parts = helpers.partitionings(1500)
    model_dir = root / "base_M"
    helpers.save_model_dir(helpers.tiny_model({p.name: len(p) for p in parts}, SIZE), parts, model_dir)
    lat, lon = helpers.clustered_points(3 * PER_SHARD, seed=3)
    shards = root / "shards"
    shards.mkdir()
    ids = [f"{k:05d}.jpg" for k in range(3 * PER_SHARD)]
    for s in range(3):
        rows = slice(s * PER_SHARD, (s + 1) * PER_SHARD)
        _write_shard(shards / f"test-{s:05d}-of-00003.tfrecord", ids[rows], lat[rows], lon[rows])
    corrupt = shards / "test-00001-of-00003.tfrecord"
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 3] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    intact = sum(end <= len(data) // 3 for end in _record_ends(corrupt))
    other = root / "other"
    other.mkdir()
    _write_shard(other / "other-00000-of-00001.tfrecord", [f"other_{k}.jpg" for k in range(40)], lat[:40], lon[:40])
    return {"root": root, "parts": parts, "model_dir": model_dir, "shards": shards, "corrupt": corrupt,
            "good_ids": ids[:PER_SHARD] + ids[2 * PER_SHARD:], "intact": ids[PER_SHARD:PER_SHARD + intact],
            "other": other / "other-*.tfrecord"}


def _results_ids(path) -> list:
    """The img_id column of a results file (the photos' rows, whatever summary follows them)."""
    with open(path, newline="") as f:
        return [row[0] for row in csv.reader(f) if row and row[0].endswith(".jpg")]


def _read_records(folder) -> dict:
    """{IMG_ID: latitude} of every record in a folder's shards."""
    import tensorflow as tf

    from geoest.data import records

    files = sorted(str(p) for p in pathlib.Path(folder).glob("*.tfrecord"))
    examples = {}
    for serialized in tf.data.TFRecordDataset(files):
        features = records.parse_example(serialized)
        examples[features[records.IMAGE_ID].numpy().decode()] = float(features[records.LATITUDE].numpy())
    return examples


# 1. A corrupt shard: every good photo is scored and the shard is named; losing a third fails loudly.
def test_corrupt_shard_keeps_every_good_photo_and_names_the_shard(world, tmp_path):
    args = ["-m", "geoest.evaluate", f"--model_dir={world['model_dir']}", "--batch_size=64",
            f"--test_records={world['shards']}/test-*.tfrecord"]
    refused = _run(*args, f"--output_dir={tmp_path / 'strict'}")
    _one_line_error(refused, "skipped", "--max_skipped")
    assert str(world["corrupt"]) in refused.stderr
    assert not (tmp_path / "strict" / "table6.txt").exists()

    result = _run(*args, f"--output_dir={tmp_path / 'eval'}", "--max_skipped=0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"damaged shard {world['corrupt']}" in result.stderr
    scored = 2 * PER_SHARD + len(world["intact"])
    assert f"{scored} test photos scored" in result.stdout
    ids = set(_results_ids(tmp_path / "eval" / "base_M" / "results_hierarchy.csv"))
    assert ids == set(world["good_ids"]) | set(world["intact"])


# 1b. A shard cut to half its bytes: its whole records are kept, by evaluation and training.
def test_half_cut_shard_keeps_its_whole_records(world, tmp_path):
    from geoest.data import pipeline
    from geoest.data.skip_log import NO_CELL, SkipLog

    whole = world["shards"] / "test-00000-of-00003.tfrecord"
    cut = tmp_path / "cut-00000-of-00001.tfrecord"
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    kept = sum(end <= len(data) // 2 for end in _record_ends(whole))
    assert 0 < kept < PER_SHARD

    log = SkipLog()
    ids = [i for batch in pipeline.eval_dataset(str(cut), 64, image_size=SIZE, skip_log=log).as_numpy_iterator()
           for i in batch["id"]]
    assert [i.decode() for i in ids] == [f"{k:05d}.jpg" for k in range(kept)]
    assert list(log.damaged) == [str(cut)] and log.damaged[str(cut)][0] == kept

    log = SkipLog()
    train = pipeline.train_dataset(str(cut), world["parts"][:1], 50, image_size=SIZE, repeat=False,
                                   deterministic=True, skip_log=log, shuffle_buffer=1)
    labels = sum(len(y[world["parts"][0].name]) for _, y in train.as_numpy_iterator())
    assert labels + log.counts[NO_CELL] == kept and list(log.damaged) == [str(cut)]


# 2. Resuming an evaluation on another test set is refused, not mixed in.
def test_evaluation_resume_on_another_test_set_is_refused(world, tmp_path):
    from geoest.data import pipeline
    from geoest.inference.batches import test_set_identity
    from geoest.inference.evaluation import PARTIAL, evaluate
    from geoest.inference.methods import load_methods

    methods, _ = load_methods({"base_M": world["model_dir"]})
    first = str(world["shards"] / "test-00000-of-00003.tfrecord")
    batches = pipeline.eval_dataset(first, 64, image_size=SIZE).as_numpy_iterator()

    def interrupted():
        yield next(batches)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(methods, interrupted(), tmp_path, save_every=1, test_set=test_set_identity(first))
    partial = (tmp_path / PARTIAL).read_bytes()

    result = _run("-m", "geoest.evaluate", f"--model_dir={world['model_dir']}", f"--test_records={world['other']}",
                  f"--output_dir={tmp_path}")
    _one_line_error(result, "test set", "--overwrite")
    assert (tmp_path / PARTIAL).read_bytes() == partial

    fresh = _run("-m", "geoest.evaluate", f"--model_dir={world['model_dir']}", f"--test_records={world['other']}",
                 f"--output_dir={tmp_path}", "--overwrite")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["base_M"]["hierarchy"]["all"]["count"] == 40


# 3. create_partitioning never writes onto its input, nor replaces another file unasked.
def test_create_partitioning_refuses_its_input_and_other_files(tmp_path):
    lat, lon = helpers.clustered_points(400, seed=1)
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{k}.jpg,{a:.5f},{b:.5f}\n" for k, (a, b) in enumerate(zip(lat, lon))))
    original = meta.read_bytes()
    tool = REPO / "tools" / "create_partitioning.py"
    _one_line_error(_run(tool, f"--meta_csv={meta}", f"--output={meta}", "--tau_min=3"), "input")
    assert meta.read_bytes() == original

    cells = tmp_path / "cells.csv"
    cells.write_text("my notes\n")
    _one_line_error(_run(tool, f"--meta_csv={meta}", f"--output={cells}", "--tau_min=3"), str(cells), "--overwrite")
    assert cells.read_text() == "my notes\n"
    assert _run(tool, f"--meta_csv={meta}", f"--output={cells}", "--tau_min=3", "--overwrite").returncode == 0
    assert _run(tool, f"--meta_csv={meta}", f"--output={cells}", "--tau_min=3").returncode == 0   # the same file
    assert cells.read_text().startswith("class_label,hex_id")
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


# 4. The TFRecord build resume checks the meta CSV's rows: never stale records.
def test_build_resume_after_a_meta_change_is_refused_or_rebuilt(tmp_path):
    from geoest.data import build

    images = tmp_path / "images"
    images.mkdir()
    for k in range(6):
        (images / f"{k}.jpg").write_bytes(jpeg_bytes(24, 32, seed=k))
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{k}.jpg,{10 + k},{20 + k}\n" for k in range(6)))
    out = tmp_path / "out"
    build.build_tfrecords(images, meta, out, num_shards=2, workers=1, progress=False)
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{k}.jpg,{-10 - k},{20 + k}\n" for k in range(6)))
    with pytest.raises(InputError, match="meta_csv_digest.*--overwrite"):
        build.build_tfrecords(images, meta, out, num_shards=2, workers=1, progress=False)
    summary = build.build_tfrecords(images, meta, out, num_shards=2, workers=1, progress=False, overwrite=True)
    assert summary.resumed_shards == 0 and summary.written == 6
    assert {i: round(lat) for i, lat in _read_records(out).items()} == {f"{k}.jpg": -10 - k for k in range(6)}


# 5. A second training into a model dir held by a running one is refused; a crashed run's lock is not stuck.
def test_second_training_into_a_held_model_dir_is_refused(tmp_path):
    from geoest.locks import hold_lock
    from geoest.training.trainer import LOCK

    model_dir = tmp_path / "run"
    model_dir.mkdir()
    with hold_lock(model_dir / LOCK):           # this test process: a running training
        result = _run("-m", "geoest.train", "--gin_file=base_M.gin", "--gin_file=smoke.gin", f"--model_dir={model_dir}")
        _one_line_error(result, "in use", str(os.getpid()), socket.gethostname())
    assert not (model_dir / LOCK).exists() and not (model_dir / "checkpoints").exists()


# 6. IMG_IDs that leave --images_dir are skipped and named, never read.
def test_img_id_path_escapes_are_skipped_and_named(tmp_path):
    from geoest.data import build
    from geoest.data.skip_log import SkipLog
    from geoest.photo_paths import OUTSIDE_ABSOLUTE, OUTSIDE_PARENT
    from geoest.inference.batches import image_batches

    images, outside = tmp_path / "images", tmp_path / "outside"
    (images / "sub").mkdir(parents=True)
    outside.mkdir()
    for name in ("a.jpg", "sub/b.jpg"):
        (images / name).write_bytes(jpeg_bytes(24, 32, seed=1))
    (outside / "secret.jpg").write_bytes(jpeg_bytes(24, 32, seed=2))
    escapes = {"../outside/secret.jpg": OUTSIDE_PARENT, "sub/../../outside/secret.jpg": OUTSIDE_PARENT,
               str(outside / "secret.jpg"): OUTSIDE_ABSOLUTE}
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{i},10,20\n" for i in ["a.jpg", "sub/b.jpg", *escapes]))

    summary = build.build_tfrecords(images, meta, tmp_path / "out", num_shards=1, workers=1, progress=False)
    assert set(_read_records(tmp_path / "out")) == {"a.jpg", "sub/b.jpg"}
    assert {i: r for r, ids in summary.skipped.items() for i in ids} == escapes
    assert "../outside/secret.jpg" in summary.report()

    log = SkipLog()
    batches = list(image_batches(images, meta, 8, SIZE, skip_log=log))
    assert sorted(i for b in batches for i in b["id"]) == ["a.jpg", "sub/b.jpg"]
    assert dict(log.unreadable) == escapes

    allowed = build.build_tfrecords(images, meta, tmp_path / "abs", num_shards=1, workers=1, progress=False,
                                    allow_absolute_paths=True)
    assert set(_read_records(tmp_path / "abs")) == {"a.jpg", "sub/b.jpg", str(outside / "secret.jpg")}
    assert allowed.num_skipped() == 2


# 7. A non-UTF-8 byte in a meta CSV and an output in a missing folder: one line, exit status 2.
def test_non_utf8_meta_csv_is_one_line_naming_the_line(tmp_path):
    (tmp_path / "images").mkdir()
    meta = tmp_path / "meta.csv"
    meta.write_bytes(b"IMG_ID,AUTHOR,LAT,LON\na.jpg,someone,10,20\nb.jpg,Jos\xe9,11,21\n")
    result = _run(REPO / "tools" / "build_tfrecords.py", f"--images_dir={tmp_path / 'images'}", f"--meta_csv={meta}",
                  f"--output_dir={tmp_path / 'out'}")
    _one_line_error(result, str(meta), "line 3", "0xe9")
    header = tmp_path / "header.csv"
    header.write_bytes(b"IMG_ID,LAT,LON,caf\xe9\na.jpg,10,20,1\n")
    result = _run(REPO / "tools" / "create_partitioning.py", f"--meta_csv={header}", f"--output={tmp_path / 'c.csv'}")
    _one_line_error(result, "line 1", "0xe9")


def test_output_in_a_missing_folder_is_one_line(world, tmp_path):
    lat, lon = helpers.clustered_points(50)
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{k}.jpg,{a},{b}\n" for k, (a, b) in enumerate(zip(lat, lon))))
    missing = tmp_path / "no" / "such"
    _one_line_error(_run(REPO / "tools" / "create_partitioning.py", f"--meta_csv={meta}", f"--output={missing / 'c.csv'}"),
                    str(missing), "does not exist")
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(40, 40))
    _one_line_error(_run("-m", "geoest.predict", f"--model_dir={world['model_dir']}", f"--images={photo}",
                         f"--output={missing / 'p.csv'}"), str(missing))


# 8. Quiet overwrites and mixes: predict's map and CSV, evaluate's table and results.
def test_predict_never_replaces_a_users_map_nor_mixes_models(world, tmp_path):
    from geoest.data.pipeline import image_dataset
    from geoest.inference.methods import load_methods
    from geoest.inference.prediction import predict_images

    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        (photos / f"{k}.jpg").write_bytes(jpeg_bytes(40, 56, seed=k))
    output, geojson = tmp_path / "predictions.csv", tmp_path / "map.geojson"
    geojson.write_text("my map")
    args = ["-m", "geoest.predict", f"--model_dir={world['model_dir']}", f"--images={photos}",   # a folder
            f"--output={output}", f"--geojson={geojson}"]
    _one_line_error(_run(*args), str(geojson), "--overwrite")
    assert geojson.read_text() == "my map" and not output.exists()
    result = _run(*args, "--overwrite")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 photos located" in result.stdout and json.loads(geojson.read_text())["type"] == "FeatureCollection"
    assert _run(*args).returncode == 0             # its own files, same model: resumed (nothing to add)

    another = tmp_path / "another"
    helpers.save_model_dir(helpers.tiny_model({p.name: len(p) for p in world["parts"]}, SIZE, seed=5),
                           world["parts"], another)
    (method,), size = load_methods({"another": another})
    rows = output.read_text()
    with pytest.raises(InputError, match="other inputs"):
        predict_images(method, [str(photos / "0.jpg")], output,
                       lambda todo: image_dataset(todo, 2, image_size=size).as_numpy_iterator())
    assert output.read_text() == rows


def test_evaluate_never_replaces_a_users_file(world, tmp_path):
    from geoest.inference.batches import record_batches, test_set_identity
    from geoest.inference.evaluation import evaluate
    from geoest.inference.methods import load_methods

    table, results = tmp_path / "table6.txt", tmp_path / "base_M" / "results_hierarchy.csv"
    results.parent.mkdir()
    for mine in (table, results):
        mine.write_text("mine\n")
    result = _run("-m", "geoest.evaluate", f"--model_dir={world['model_dir']}", f"--test_records={world['other']}",
                  f"--output_dir={tmp_path}")
    _one_line_error(result, "--overwrite")
    assert table.read_text() == results.read_text() == "mine\n"

    methods, _ = load_methods({"base_M": world["model_dir"]})
    run = lambda **kw: evaluate(methods, record_batches(str(world["other"]), 16, SIZE), tmp_path,
                                test_set=test_set_identity(str(world["other"])), **kw)
    table.unlink()
    with pytest.raises(InputError, match="results_hierarchy.csv.*--overwrite"):
        run()
    assert results.read_text() == "mine\n"
    run(overwrite=True)
    assert "mine" not in results.read_text() and "mine" not in table.read_text()
    run()                                   # now evaluate's own files, for the same inputs


# 9. Smaller: a literal nan, duplicate IMG_IDs, an unused gin macro.
def test_nan_latitude_is_named_as_nan_and_duplicate_ids_are_reported(tmp_path):
    from geoest.data.meta_csv import read_meta_csv

    nan = tmp_path / "nan.csv"
    nan.write_text("IMG_ID,LAT,LON\na.jpg,10,20\nb.jpg,nan,20\n")
    with pytest.raises(InputError, match=r"nan.csv: row 2 \(line 3, IMG_ID 'b.jpg'\): LAT is nan"):
        read_meta_csv(nan, scene=False, author=False)
    twice = tmp_path / "twice.csv"
    twice.write_text("IMG_ID,LAT,LON\na.jpg,10,20\nb.jpg,11,20\nc.jpg,12,20\nb.jpg,11,20\n")
    with pytest.raises(InputError, match=r"line 5, IMG_ID 'b.jpg'\): IMG_ID appears more than once"):
        read_meta_csv(twice, scene=False, author=False)


def test_unused_gin_macro_is_reported(tmp_path):
    result = _run("-m", "geoest.train", "--gin_file=base_M.gin", "--gin_file=smoke.gin",
                  f"--model_dir={tmp_path / 'run'}", "--gin_param=IMAGENET_WEIGHT='imagenet'")
    _one_line_error(result, "IMAGENET_WEIGHT", "IMAGENET_WEIGHTS")
    assert not (tmp_path / "run").exists()
