"""python -m geoest.reproduce (geoest.reproduction.run): stages are skipped when done, re-run when
interrupted, refused when their inputs changed; and the real formats end to end: real rows of the published Im2GPS3k meta -> records -> every training and
fine-tuning stage (tiny backbone, a few steps) -> both halves of Table 6, which score_predictions
reproduces from the results files."""
import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import pytest

from data_helpers import jpeg_bytes
from reproduction_helpers import reproduce
from geoest.errors import InputError
from geoest.reproduction import Settings, Stage, recipe, run

REPO = pathlib.Path(__file__).resolve().parents[1]
# The URL route (python -m geoest.download, img2dataset) where it is installed, else the photos route.
DOWNLOAD = all(importlib.util.find_spec(m) is not None for m in ("geoest.download", "img2dataset"))


def _python_stage(tmp_path, name, source, inputs=()):
    out = tmp_path / f"{name}.txt"
    return Stage(name, "a test stage", ("-c", f"import pathlib; pathlib.Path({str(out)!r}).write_text({source!r})"),
                 tuple(map(str, inputs)), (str(out),))


def test_stages_are_skipped_when_done_and_refused_when_their_inputs_changed(tmp_path):
    settings = Settings(str(tmp_path / "data"), str(tmp_path / "work"))
    given = tmp_path / "given.csv"
    given.write_text("IMG_ID,LAT,LON\n")
    stage = _python_stage(tmp_path, "one", "first", [given])
    assert not run.stage_done(settings, stage)
    run.run_stage(settings, stage)
    assert run.stage_done(settings, stage)
    manifest = json.loads((tmp_path / "work" / "stages" / "one.json").read_text())
    assert manifest["complete"] and list(manifest["inputs"]["files"]) == [str(given)]
    # its output removed: not done (run again; each command resumes itself)
    pathlib.Path(stage.outputs[0]).unlink()
    assert not run.stage_done(settings, stage)
    run.run_stage(settings, stage)
    # an input changed, or the command: refused, one line naming what changed
    given.write_text("IMG_ID,LAT,LON\na.jpg,1,2\n")
    with pytest.raises(InputError, match=r"stage one: .*given.csv changed since it ran") as error:
        run.stage_done(settings, stage)
    assert "\n" not in str(error.value)
    other = _python_stage(tmp_path, "one", "second", [given])
    with pytest.raises(InputError, match="stage one: its command, .*given.csv changed"):
        run.stage_done(settings, other)
    # a failing command is reported as such, and the stage stays not done
    broken = Stage("two", "fails", ("-c", "raise SystemExit(3)"), (), (str(tmp_path / "never.txt"),))
    with pytest.raises(InputError, match="stage two failed \\(exit status 3"):
        run.run_stage(settings, broken)
    assert not run.stage_done(settings, broken)


def test_a_missing_input_is_named_before_anything_runs(tmp_path):
    done = reproduce(f"--data_dir={tmp_path / 'data'}", f"--work_dir={tmp_path / 'work'}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'data' / 'mp16_urls.csv'} does not exist (an input of stage download_mp16; "
        f"docs/reproduce.md lists what --data_dir={tmp_path / 'data'} holds)"]


# rows of the published Im2GPS3k meta given to each data set of the recipe
SPLITS = {"mp16": (0, 200), "yfcc25600": (200, 240), "im2gps": (240, 270), "im2gps3k": (270, 330)}
TINY = ["IMAGENET_WEIGHTS=None", "build_model.backbone='tiny'", "IMAGE_SIZE=32", "train.batch_size=64",
        "train_dataset.shuffle_buffer=64", "train.epochs=1", "train.validation_steps=1"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_published_meta_to_both_halves_of_table6(tmp_path, im2gps3k_meta_rows, mp16_dir):
    header, rows = im2gps3k_meta_rows    # the authors' bytes, CRLF kept
    data = tmp_path / "data"
    data.mkdir()
    (data / recipe.PARTITIONINGS_FOLDER).symlink_to(mp16_dir)
    photos = {}
    for name, (start, stop) in SPLITS.items():
        (data / f"{name}_places365.csv").write_bytes(header + b"".join(rows[start:stop]))
        for k in range(start, stop):
            photos[name, rows[k].decode().split(",")[0]] = jpeg_bytes(48 + k % 3 * 8, 64, seed=k)
    work = tmp_path / "work"
    args = [f"--data_dir={data}", f"--work_dir={work}", *(f"--gin_param={p}" for p in TINY),
            "--train_flag=--nocalibrate", "--records_flag=--workers=1", "--records_flag=--shorter_side=64",
            "--download_flag=--processes=1", "--download_flag=--threads=4", "--download_flag=--retries=0",
            "--download_flag=--shorter_side=64", "--evaluate_flag=--batch_size=16"]
    if DOWNLOAD:     # URL lists served by a loopback server: photos -> geoest.download -> records
        from download_helpers import PhotoServer

        cases = {f"/{name}/{image_id}": ("photo", jpeg) for (name, image_id), jpeg in photos.items()}
        with PhotoServer(cases, max_requests=2 * len(cases), max_seconds=1500) as server:
            for name in SPLITS:
                (data / f"{name}_urls.csv").write_text("IMG_ID,url\n" + "".join(
                    f"{i},{server.url(f'/{n}/{i}')}\n" for n, i in photos if n == name))
            done = reproduce(*args)
        assert server.requests == len(cases)          # each photo asked for once
    else:            # the folders of photos a download gives: photos -> geoest.build_tfrecords -> records
        for (name, image_id), jpeg in photos.items():
            (data / name).mkdir(exist_ok=True)
            (data / name / image_id).write_bytes(jpeg)
        done = reproduce(*args)
    assert done.returncode == 0, done.stderr[-4000:]
    report = (work / "table6.txt").read_text()
    assert done.stdout.endswith(report)          # printed last, after the stages' own output
    halves = report.split("Table 6 (")[1:]
    assert [h.split(",")[0] for h in halves] == ["top) on Im2GPS", "bottom) on Im2GPS3k"]
    for half, (name, (start, stop)) in zip(halves, list(SPLITS.items())[2:]):
        for _, _, row in recipe.ROWS:
            line = next(x for x in half.splitlines() if x.startswith(row + " "))
            cells = line.split()
            assert cells[-10 if "/" in line else -2] == str(stop - start)      # N: every test photo scored
    assert "15.2 / 40.9 / 51.5 / 65.4 / 78.5" in halves[0] and "10.5 / 28.0 / 36.6 / 49.7 / 66.0" in halves[1]
    # the photos of each step, and Table 4's counts beside the paper's
    assert re.search(rf"{'download' if DOWNLOAD else 'records'} mp16\s+200\s", report)
    used = {step: int(n) for step, n in re.findall(r"^(train_\w+)\s+([\d,]+)\s", report.replace(",", ""), re.M)}
    assert len(used) == 13 and 150 < used["train_base_M"] <= 200     # photos outside every MP-16 cell left out
    assert all(0 < used[f"train_isn_{c}"] < used["train_base_M"] for c in ("indoor", "natural", "urban"))
    assert "(paper 1,607)" in report
    # score_predictions on the written results gives evaluate's figures (Table 4 per scene)
    for test_set in ("im2gps", "im2gps3k"):
        summary = json.loads((work / "eval" / test_set / "summary.json").read_text())
        for method, output in (("ISNs", "hierarchy"), ("base_vgg_c", recipe.MIDDLE)):
            scored = subprocess.run([sys.executable, REPO / "tools" / "score_predictions.py",
                                     f"--predictions_csv={work / 'eval' / test_set / method / f'results_{output}.csv'}",
                                     f"--meta_csv={data / f'{test_set}_places365.csv'}"],
                                    capture_output=True, text=True, timeout=120)
            assert json.loads(scored.stdout) == summary[method][output]
    vgg, vgg_c = (json.loads((work / "eval" / "im2gps3k" / "summary.json").read_text())[m][recipe.MIDDLE]["all"]
                  for m in ("base_vgg", "base_vgg_c"))
    assert vgg["count"] == vgg_c["count"] and vgg["mean_km"] != vgg_c["mean_km"]   # one model, other centres
    # every stage done: a re-run only reports; another setting is refused with one line
    again = reproduce(*args)
    assert again.returncode == 0 and again.stdout == report
    stage_lines = [x for x in again.stderr.splitlines() if "] stage " in x]
    assert len(stage_lines) == len(recipe.paper_recipe(Settings(str(data), str(work))))
    assert all(x.endswith("done, skipped") for x in stage_lines)
    refused = reproduce(*args[:-1], "--evaluate_flag=--batch_size=8")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: stage evaluate_im2gps: its command changed")
