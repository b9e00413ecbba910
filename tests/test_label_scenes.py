"""tools/label_scenes.py and tools/scene_stats.py end to end, on the official Places365 files.

The meta CSV the labeller writes must feed tools/build_tfrecords.py and the ISN filter (§4).
"""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from geoest.scene import columns, places365, statistics
from scene_helpers import read_rows, save_stand_in_model, write_meta, write_photos

REPO = pathlib.Path(__file__).resolve().parents[1]
GOOD = [f"{i // 4}/{i}.jpg" for i in range(10)]


def run_tool(name, *args):
    return subprocess.run([sys.executable, str(REPO / "tools" / name), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.fixture
def labelled(tmp_path, places365_dir):
    """Runs label_scenes.py --all_probs over ten photos and an unreadable one."""
    images = tmp_path / "images"
    write_photos(images, GOOD)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    meta_csv = tmp_path / "meta.csv"
    write_meta(meta_csv, GOOD[:5] + ["broken.jpg"] + GOOD[5:])
    save_stand_in_model(tmp_path / "scene.keras", 365)
    output = tmp_path / "meta_places365.csv"
    result = run_tool("label_scenes.py", f"--images_dir={images}", f"--meta_csv={meta_csv}",
                      f"--output_csv={output}", f"--weights={tmp_path / 'scene.keras'}",
                      f"--places365_dir={places365_dir}", "--preprocess=tf", "--batch_size=4",
                      "--all_probs")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "10 images labelled" in result.stdout and "unreadable broken.jpg" in result.stdout
    return images, output


def test_output_feeds_build_tfrecords_the_isn_filter_and_scene_stats(labelled, tmp_path,
                                                                     places365_dir):
    from geoest.data import pipeline
    from geoest.data.build import build_tfrecords
    from geoest.data.meta_csv import read_meta_csv

    images, output = labelled
    rows = read_rows(output)
    assert rows[0] == list(columns.META_COLUMNS) + list(columns.prob365_columns())
    assert [r[0] for r in rows[1:]] == GOOD
    parsed = read_meta_csv(output)
    hierarchy = places365.load_default_hierarchy(places365_dir)
    np.testing.assert_allclose(parsed.probs3, hierarchy.aggregate(parsed.probs365, "S3"),
                               atol=1e-5)

    summary = build_tfrecords(images, output, tmp_path / "records", num_shards=2, workers=1,
                              progress=False)
    assert summary.written == len(GOOD) and summary.num_skipped() == 0, summary.report()
    stats = statistics.scene_statistics(parsed.scene_labels[:, 0], parsed.probs3)
    assert stats["count"] == len(GOOD)
    for concept in places365.CONCEPTS:
        dataset = pipeline.train_dataset(str(tmp_path / "records" / "*.tfrecord"), [], 1,
                                         image_size=32, concept=concept,
                                         scene_matrices=hierarchy, shuffle_buffer=1,
                                         deterministic=True, repeat=False)
        assert sum(1 for _ in dataset) == stats["isn_images"][concept]
    assert any(0 < n < len(GOOD) for n in stats["isn_images"].values())  # keeps some, not all

    result = run_tool("scene_stats.py", f"--meta_csv={output}", "--tau_s=0.2")
    assert result.returncode == 0, result.stderr[-3000:]
    values = np.array([r[4:10] for r in rows[1:]], dtype=np.float64)
    assert json.loads(result.stdout) == {
        "count": len(GOOD), "tau_s": 0.2,
        "images_per_concept": {c: int((values[:, 0] == i).sum())
                               for i, c in enumerate(places365.CONCEPTS)},
        "isn_images": {c: int((values[:, 3 + i] > 0.2).sum())
                       for i, c in enumerate(places365.CONCEPTS)}}


def test_input_errors_are_one_line_and_exit_non_zero(tmp_path):
    result = run_tool("label_scenes.py", f"--images_dir={tmp_path}",
                      f"--meta_csv={tmp_path / 'meta.csv'}", f"--output_csv={tmp_path / 'o.csv'}",
                      f"--places365_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path} lacks")
    assert "Traceback" not in result.stderr
    result = run_tool("scene_stats.py", f"--meta_csv={tmp_path / 'absent.csv'}")
    assert result.returncode == 2 and "absent.csv" in result.stderr
    (tmp_path / "meta.csv").write_text("IMG_ID,LAT,LON,S3_Label\na.jpg,1,2,0\n")
    result = run_tool("scene_stats.py", f"--meta_csv={tmp_path / 'meta.csv'}")
    assert result.returncode == 2 and "no column 'Prob_indoor', 'Prob_natural', 'Prob_urban'" in result.stderr
