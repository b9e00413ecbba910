"""The real path on the paper's published formats, end to end, as a user runs it: real rows of the
authors' Im2GPS3k meta (photos drawn for their IMG_IDs), the published MP-16 partitionings,
build_tfrecords -> train base(M) (tiny backbone, a few steps) -> the §4 fine-tuning stage -> an
MTN(S16) from the meta's S16_Label -> geoest.evaluate --reference=im2gps3k -> score_predictions
on its results file gives its summary.json."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from data_helpers import jpeg_bytes

REPO = pathlib.Path(__file__).resolve().parents[1]
SPLITS = {"train": (0, 200), "val": (200, 240), "test": (240, 300)}   # rows of the published meta


def _run(*args, timeout=400):
    done = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stderr[-4000:]}"
    return done


def _train(model_dir, *gin_files, params=()):
    return _run("-m", "geoest.train", *(f"--gin_file={f}" for f in gin_files), f"--model_dir={model_dir}",
                *(f"--gin_param={p}" for p in params))


@pytest.mark.slow
@pytest.mark.shared_data
def test_published_meta_to_table6_end_to_end(tmp_path, im2gps3k_meta_rows, mp16_dir):
    header, rows = im2gps3k_meta_rows    # the authors' bytes, CRLF kept
    images = tmp_path / "images"
    images.mkdir()
    for k, row in enumerate(rows[:SPLITS["test"][1]]):
        image_id = row.decode().split(",")[0]
        (images / image_id).write_bytes(jpeg_bytes(48 + k % 3 * 8, 64, seed=k))
    metas = {}
    for split, (start, stop) in SPLITS.items():
        metas[split] = tmp_path / f"{split}.csv"
        metas[split].write_bytes(header + b"".join(rows[start:stop]))
        _run(REPO / "tools" / "build_tfrecords.py", f"--images_dir={images}", f"--meta_csv={metas[split]}",
             f"--output_dir={tmp_path / 'records'}", "--workers=1", "--shorter_side=64")

    data = [f"PARTITIONINGS_DIR='{mp16_dir}'", f"TRAIN_FILES='{tmp_path / 'records' / 'train-*.tfrecord'}'",
            f"VALIDATION_FILES='{tmp_path / 'records' / 'val-*.tfrecord'}'", "IMAGENET_WEIGHTS=None",
            "build_model.backbone='tiny'", "IMAGE_SIZE=32", "train.batch_size=16", "train_dataset.shuffle_buffer=64"]
    _train(tmp_path / "base_M", "base_M.gin", params=[*data, "train.epochs=1"])
    counted = json.loads((tmp_path / "base_M" / "train_images.json").read_text())["train_images"]
    assert 150 < counted <= 200       # photos of the published meta outside every MP-16 cell are left out
    _train(tmp_path / "base_M_ft", "base_M.gin", "finetune.gin",
           params=[*data, f"FINETUNE_FROM='{tmp_path / 'base_M'}'", "train.epochs=2"])
    tuned = json.loads((tmp_path / "base_M_ft" / "best.json").read_text())
    assert tuned["epoch"] in (1, 2) and "val_hierarchy_acc_2500km" in tuned
    _train(tmp_path / "mtn_s16", "mtn_s16.gin", params=[*data, "train.epochs=1", "train.steps_per_epoch=3"])
    mtn = json.loads((tmp_path / "mtn_s16" / "best.json").read_text())
    assert 0.0 <= mtn["val_scene_top1"] <= 1.0        # S16_Label of the validation rows

    out = tmp_path / "eval"
    _run("-m", "geoest.evaluate", f"--model_dir=base_M_ft={tmp_path / 'base_M_ft'}",
         f"--model_dir=mtn_s16={tmp_path / 'mtn_s16'}", f"--images_dir={images}", f"--meta_csv={metas['test']}",
         f"--output_dir={out}", "--reference=im2gps3k", "--batch_size=16")
    summary = json.loads((out / "summary.json").read_text())
    n_test = SPLITS["test"][1] - SPLITS["test"][0]
    assert summary["mtn_s16"]["scene_accuracy"]["level"] == "S16"
    assert summary["mtn_s16"]["scene_accuracy"]["count"] == n_test
    assert "ISNs(M, f*, S3)" in (out / "table6.txt").read_text()      # the paper's rows beside
    for method, output in (("base_M_ft", "hierarchy"), ("mtn_s16", "cells_50_1000")):
        scored = json.loads(_run(REPO / "tools" / "score_predictions.py",
                                 f"--predictions_csv={out / method / f'results_{output}.csv'}",
                                 f"--meta_csv={metas['test']}").stdout)
        assert scored == summary[method][output]
        assert scored["all"]["count"] == n_test
        assert sum(scored[c]["count"] for c in ("indoor", "natural", "urban")) == n_test
    assert np.isfinite(summary["base_M_ft"]["hierarchy"]["all"]["mean_km"])
