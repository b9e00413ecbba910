"""Faults of shared clusters: a full disk, test photos seen in training, two evaluations into one
folder, an export killed while writing. Each gives one line (exit status 2) or a whole result,
and a re-run completes. docs/guarantees.md cites these tests."""
import contextlib
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from test_reliability import _one_line_error, _read_records, _results_ids, _run, world  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _small_disk(path: pathlib.Path, size: str):
    """A tmpfs of `size` at `path` (skips where mounting is not allowed); yields a function that
    grows it to 64 MB (the "re-run with space")."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode()[:200]}")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=64m", str(path)], check=True)

    try:
        yield grow
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _disk_full_line(result, *needles):
    line = _one_line_error(result, "the disk is full", *needles)
    assert "Traceback" not in result.stderr
    return line


@pytest.mark.slow
def test_full_disk_build_tfrecords_is_one_line_and_the_rerun_completes(tmp_path):
    from scene_helpers import write_meta, write_photos

    ids = [f"{i}.jpg" for i in range(200)]
    write_photos(tmp_path / "images", ids, size=(200, 150))
    write_meta(tmp_path / "meta.csv", ids)
    with _small_disk(tmp_path / "disk", "200k") as grow:
        args = ["tools/build_tfrecords.py", f"--images_dir={tmp_path / 'images'}", f"--meta_csv={tmp_path / 'meta.csv'}",
                f"--output_dir={tmp_path / 'disk' / 'records'}", "--num_shards=4", "--workers=1"]
        _disk_full_line(_run(*args), "TFRecord shard")
        assert not list((tmp_path / "disk" / "records").glob("*.tmp"))        # nothing half-written kept
        grow()
        done = _run(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert sorted(_read_records(tmp_path / "disk" / "records")) == sorted(ids)


@pytest.mark.slow
def test_full_disk_evaluate_is_one_line_and_the_rerun_completes(world, tmp_path):
    with _small_disk(tmp_path / "disk", "24k") as grow:
        args = ["-m", "geoest.evaluate", f"--model_dir={world['model_dir']}", "--batch_size=64", "--max_skipped=0.5",
                f"--test_records={world['shards']}/test-*.tfrecord", f"--output_dir={tmp_path / 'disk' / 'eval'}"]
        _disk_full_line(_run(*args))
        assert not [p for p in (tmp_path / "disk" / "eval").rglob("*") if ".tmp" in p.name]
        grow()
        done = _run(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        names = sorted(p.name for p in (tmp_path / "disk" / "eval" / "base_M").glob("results_*.csv"))
        scored = _results_ids(tmp_path / "disk" / "eval" / "base_M" / names[-1])
        assert sorted(scored) == sorted(world["good_ids"] + world["intact"])


@pytest.mark.slow
def test_full_disk_training_and_export_are_one_line_and_the_reruns_complete(tmp_path):
    with _small_disk(tmp_path / "disk", "96k") as grow:
        model_dir = tmp_path / "disk" / "run"
        args = ["-m", "geoest.train", "--gin_file=gin/base_M.gin", "--gin_file=smoke.gin", f"--model_dir={model_dir}"]
        _disk_full_line(_run(*args))
        assert not (model_dir / "train.lock").exists()
        grow()
        done = _run(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (model_dir / "best.keras").is_file()
        shutil.copytree(model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("checkpoints"))
    with _small_disk(tmp_path / "export_disk", "64k") as grow:
        export_dir = tmp_path / "export_disk" / "base_M" / "1"
        args = ["-m", "geoest.export", f"--model_dir={tmp_path / 'model'}", f"--export_dir={export_dir}"]
        _disk_full_line(_run(*args), "SavedModel")
        assert not export_dir.exists() and not list(export_dir.parent.glob(".*tmp*"))
        grow()
        done = _run(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (export_dir / "saved_model.pb").is_file()


@pytest.mark.slow
def test_an_export_killed_while_writing_leaves_no_half_folder(world, tmp_path):
    export_dir = tmp_path / "serving" / "base_M" / "1"
    export_dir.parent.mkdir(parents=True)
    args = [sys.executable, "-m", "geoest.export", f"--model_dir={world['model_dir']}", f"--export_dir={export_dir}"]
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(export_dir.parent.glob(".1.tmp*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)                       # no handler can run: the hardest stop
    process.wait(timeout=60)
    assert not export_dir.exists() or (export_dir / "saved_model.pb").is_file()      # absent or complete
    done = _run(*args[1:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert (export_dir / "saved_model.pb").is_file() and not list(export_dir.parent.glob(".1.tmp*"))


@pytest.mark.slow
def test_evaluating_on_training_photos_is_refused_with_the_overlap_count(world, tmp_path):
    model_dir = tmp_path / "base_M"
    shutil.copytree(world["model_dir"], model_dir)
    # what `python -m geoest.train` records of its run (training/trainer.py OPERATIVE_CONFIG)
    (model_dir / "operative_config.gin").write_text(f"tfrecord_inputs.train_files = '{world['other']}'\n")
    args = ["-m", "geoest.evaluate", f"--model_dir={model_dir}", f"--test_records={world['other']}"]
    _one_line_error(_run(*args, f"--output_dir={tmp_path / 'refused'}"), "40 of its 40 photos", "--allow_train_overlap")
    assert not (tmp_path / "refused" / "table6.txt").exists()
    allowed = _run(*args, f"--output_dir={tmp_path / 'check'}", "--allow_train_overlap")
    assert allowed.returncode == 0, allowed.stderr[-3000:]


@pytest.mark.slow
def test_a_second_evaluation_into_the_same_folder_is_refused(world, tmp_path):
    args = ["-m", "geoest.evaluate", f"--model_dir={world['model_dir']}", "--batch_size=16", "--max_skipped=0.5",
            f"--test_records={world['shards']}/test-*.tfrecord", f"--output_dir={tmp_path / 'eval'}"]
    first = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (tmp_path / "eval" / "evaluate.lock").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)           # paused: it holds the folder all the while
    try:
        second = _run(*args)
    finally:
        first.send_signal(signal.SIGCONT)
    _one_line_error(second, "in use by another run", "evaluate.lock")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert not (tmp_path / "eval" / "evaluate.lock").exists()


@pytest.mark.slow
@pytest.mark.parametrize("binding, needle", [("train.epochs=[1", "train.epochs"), ("train.epochs='two'", "'two'"),
                                             ("train.batch_size=0", "batch_size")])
def test_gin_value_errors_are_one_line_and_leave_no_model_dir(tmp_path, binding, needle):
    model_dir = tmp_path / "run"
    result = _run("-m", "geoest.train", "--gin_file=gin/base_M.gin", "--gin_file=smoke.gin", f"--gin_param={binding}",
                  f"--model_dir={model_dir}")
    _one_line_error(result, needle)
    assert not model_dir.exists()
