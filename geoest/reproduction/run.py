"""Runs the recipe (`geoest.reproduction.recipe`) stage by stage, resumably, and reports Table 6.

Each stage keeps a manifest, <work_dir>/stages/<name>.json: its command and the digests of its
input files, and whether it ran to its end. A stage whose manifest says so for the same command
and inputs, and whose outputs are there, is skipped; one whose command or inputs changed since it
ran is refused with one line (naming what changed), never run over other results; an interrupted
one is run again, and its command resumes itself. The whole work dir is held with a lock.
"""
import json
import logging
import os
import pathlib
import shlex
import subprocess
import sys

from geoest.errors import InputError
from geoest.files import ENCODING, digest, write_text
from geoest.geo.distance import THRESHOLDS_KM
from geoest.inference.report import PAPER_TABLE6, SCALES
from geoest.locks import hold_lock
from geoest.reproduction import recipe
from geoest.scene.places365 import CONCEPTS

SMALL_FILE = 16 << 20          # inputs up to this size are hashed, larger ones known by size and time
# Table 4: test photos per S3 concept, as the paper counts them.
PAPER_TABLE4 = {"im2gps": {"all": 237, "indoor": 19, "natural": 80, "urban": 138},
                "im2gps3k": {"all": 2997, "indoor": 545, "natural": 845, "urban": 1607}}


# -- the printed sequence -------------------------------------------------------------------------
def _shell_word(arg: str) -> str:
    """An argument as one types it: as it is when safe, `--flag="value"` when the value needs quoting."""
    if shlex.quote(arg) == arg:
        return arg
    flag, sep, value = arg.partition("=")
    if sep and flag.startswith("--") and shlex.quote(flag) == flag and not set(value) & set('"$`\\!'):
        return f'{flag}="{value}"'
    return shlex.quote(arg)


def command_text(stage: recipe.Stage) -> str:
    """The stage's command as a shell line, one flag per continued line."""
    words = [_shell_word(a) for a in stage.argv]
    return " \\\n    ".join(["python " + " ".join(words[:2]), *words[2:]])          # python -m geoest.<command>


def sequence_text(settings: recipe.Settings) -> str:
    """The whole recipe as one would type it (`--dry_run`; docs/reproduce.md holds it)."""
    blocks = []
    if not settings.regenerate_partitionings:
        blocks.append(f"# §3.1 partitionings: {settings.data(recipe.PARTITIONINGS_FOLDER)}/"
                      f"{{{','.join(p[:-4] for p in recipe.PARTITIONINGS)}}}.csv, used as published")
    for stage in recipe.paper_recipe(settings):
        blocks.append(f"# {stage.title}\n{command_text(stage)}")
    blocks.append(f"# Table 6, both halves, beside the paper's figures; Table 4; the photos of each step: "
                  f"{settings.work(REPORT)}")
    return "\n\n".join(blocks) + "\n"


# -- stage manifests ------------------------------------------------------------------------------
def input_digest(path) -> str:
    """sha256 of a file up to SMALL_FILE bytes; a larger one (a model, a 4.7 M-row meta) by size and mtime."""
    stat = os.stat(path)
    if stat.st_size <= SMALL_FILE:
        with open(path, "rb") as f:
            return "sha256 " + digest(iter(lambda: f.read(1 << 20), b""))
    return f"size {stat.st_size}, mtime_ns {stat.st_mtime_ns}"


def stage_inputs(stage: recipe.Stage) -> dict:
    return {"command": list(stage.argv), "files": {str(p): input_digest(p) for p in stage.inputs}}


def manifest_path(settings: recipe.Settings, stage: recipe.Stage) -> pathlib.Path:
    return pathlib.Path(settings.work("stages", f"{stage.name}.json"))


def stage_done(settings: recipe.Settings, stage: recipe.Stage) -> bool:
    """Whether the stage ran to its end on these inputs (then it is skipped).

    Raises:
      InputError: it ran (or started) with another command or other input files: one line naming them.
    """
    manifest = manifest_path(settings, stage)
    if not manifest.is_file():
        return False
    previous = json.loads(manifest.read_text(encoding=ENCODING))
    inputs = stage_inputs(stage)
    if previous["inputs"] != inputs:
        old = previous["inputs"]
        changed = (["its command"] if old["command"] != inputs["command"] else []) + sorted(
            p for p in set(old["files"]) | set(inputs["files"]) if old["files"].get(p) != inputs["files"].get(p))
        raise InputError(f"stage {stage.name}: {', '.join(changed)} changed since it ran (see {manifest}); "
                         f"remove {manifest} and its outputs ({', '.join(map(str, stage.outputs))}) to run it anew, "
                         "or use another --work_dir")
    return bool(previous.get("complete")) and all(os.path.exists(p) for p in stage.outputs)


def _argv(stage: recipe.Stage) -> list:
    return [sys.executable, *stage.argv]


def run_stage(settings: recipe.Settings, stage: recipe.Stage) -> None:
    """Runs one stage's command (its output goes to this process's), then records it complete.

    Raises:
      InputError: an input is missing, or the command failed (its own message above says why).
    """
    missing = [p for p in stage.inputs if not os.path.exists(p)]
    if missing:
        raise InputError(f"stage {stage.name}: its input {missing[0]} does not exist")
    manifest = manifest_path(settings, stage)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    inputs = stage_inputs(stage)
    write_text(manifest, json.dumps({"inputs": inputs, "complete": False}, indent=1) + "\n")
    for output in stage.outputs:
        pathlib.Path(output).parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(_argv(stage))
    if done.returncode != 0:
        raise InputError(f"stage {stage.name} failed (exit status {done.returncode}; its message is above); "
                         "re-run the same command to resume it")
    absent = [p for p in stage.outputs if not os.path.exists(p)]
    if absent:
        raise InputError(f"stage {stage.name} ended without writing {absent[0]}")
    write_text(manifest, json.dumps({"inputs": inputs, "complete": True}, indent=1) + "\n")


def check_data_dir(settings: recipe.Settings, stages) -> None:
    """Every input no stage writes is there, before anything runs (one line naming the first missing)."""
    made = {os.path.normpath(p) for s in stages for p in s.outputs}
    for stage in stages:
        for path in stage.inputs:
            if os.path.normpath(path) not in made and not os.path.exists(path):
                raise InputError(f"{path} does not exist (an input of stage {stage.name}; docs/reproduce.md "
                                 f"lists what --data_dir={settings.data_dir} holds)")


def reproduce(settings: recipe.Settings) -> str:
    """Runs every stage not yet done, then writes and returns the report (`report`)."""
    stages = recipe.paper_recipe(settings)
    check_data_dir(settings, stages)
    pathlib.Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
    with hold_lock(settings.work("reproduce.lock"), "this --work_dir", "--work_dir"):
        for k, stage in enumerate(stages, 1):
            if stage_done(settings, stage):
                logging.info("stage %d/%d %s: done, skipped", k, len(stages), stage.name)
                continue
            logging.info("stage %d/%d %s: %s\n%s", k, len(stages), stage.name, stage.title, command_text(stage))
            run_stage(settings, stage)
        text = report(settings)
        write_text(settings.work(REPORT), text)
    return text


# -- the report -----------------------------------------------------------------------------------
REPORT = "table6.txt"


def _read_json(path):
    with open(path, encoding=ENCODING) as f:
        return json.load(f)


def photos_used(settings: recipe.Settings) -> list:
    """(step, photos, note) for each set's records and each trained model."""
    lines = []
    for data_set in recipe.DATA_SETS:
        marker = recipe.records_marker(settings, data_set)
        if recipe.from_photos_folder(settings, data_set):
            with open(marker, encoding=ENCODING) as f:
                shards = [json.loads(line) for line in f if line.strip()]
            written = sum(s["written"] for s in shards)
            skipped = sum(len(v) for s in shards for v in s["skipped"].values())
            lines.append((f"records {data_set.name}", written, f"{skipped} skipped"))
        else:
            counts = _read_json(marker)
            missing = counts.get("missing", {})
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(missing.items(), key=lambda kv: -kv[1]) if n)
            lines.append((f"download {data_set.name}", counts["photos_written"],
                          f"{sum(missing.values())} not downloaded" + (f" ({why})" if why else "")))
    for stage in recipe.training_stages(settings):
        counted = os.path.join(os.path.dirname(stage.outputs[0]), "train_images.json")
        if os.path.exists(counted):   # counted by geoest.train unless train.steps_per_epoch was given
            lines.append((stage.name, _read_json(counted)["train_images"],
                          "training photos per epoch (in a cell; ISNs: of their concept)"))
    return lines


def _percent(fraction) -> str:
    return f"{100 * fraction:.1f}"


def table6_half(summary: dict, test_set: str) -> str:
    """One half of Table 6: each row's accuracy here beside the paper's (%), the photos it scored."""
    header = ["Method"] + [f"{s} {t:,} km" for s, t in zip(SCALES, THRESHOLDS_KM)] + ["N", "paper"]
    rows = []
    for method, output, row in recipe.ROWS:
        scores = summary.get(method, {}).get(output, {}).get("all")
        if scores is None:
            continue
        paper = PAPER_TABLE6[test_set].get(row)
        rows.append([row] + [_percent(scores["accuracy"][str(t)]) for t in THRESHOLDS_KM] + [str(scores["count"]),
                    " / ".join(f"{v:.1f}" for v in paper) if paper else "-"])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i in (0, len(r) - 1) else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def table4(summaries: dict) -> str:
    """Table 4: test photos per S3 concept here and in the paper."""
    lines = ["Scenes   " + "".join(f"{name:>22}" for name in summaries)]
    for concept in ("all", *CONCEPTS):
        cells = []
        for name, summary in summaries.items():
            scores = summary["base_M"]["hierarchy"].get(concept, {"count": 0})
            cells.append(f"{scores['count']:>8,} (paper {PAPER_TABLE4[name][concept]:,})".rjust(22))
        lines.append(f"{concept:<9}" + "".join(cells))
    return "\n".join(lines)


def report(settings: recipe.Settings) -> str:
    """Both halves of Table 6 beside the paper's figures, Table 4 and the photos used at each step."""
    summaries = {t.name: _read_json(os.path.join(recipe.evaluation_dir(settings, t), "summary.json"))
                 for t in recipe.TEST_SETS}
    parts = []
    for test_set in recipe.TEST_SETS:
        parts.append(f"Table 6 ({recipe.HALVES[test_set.name]}) on {test_set.what}: % within each radius "
                     "here, the paper's figures in the last column\n"
                     + table6_half(summaries[test_set.name], test_set.name))
    parts.append("Table 4, test photos per scene concept (S3)\n" + table4(summaries))
    used = photos_used(settings)
    width = max(len(step) for step, _, _ in used)
    parts.append("Photos used at each step\n"
                 + "\n".join(f"{step:<{width}}  {n:>10,}  {note}" for step, n, note in used))
    return "\n\n".join(parts) + "\n"
