"""Scores per S3 scene concept (Table 4) beside the overall ones (Table 6), of a results file and
its meta CSV: `geoest.inference.scene_scores.score_file` and `python -m geoest.score_predictions`."""
import json
import subprocess
import sys

import numpy as np
import pytest

from geoest.errors import InputError
from geoest.geo.scoring import read_results_csv, summarize, write_results_csv
from geoest.inference.scene_scores import score_file

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
PUBLISHED = REPO.parent / "shared" / "data" / "published"


def _score_main(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "score_predictions.py"), *args],
                          capture_output=True, text=True)


def test_results_file_round_trip_and_cli(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    gt = rng.uniform(-60, 60, (n, 2))
    pred = gt + rng.normal(0, 3, (n, 2))
    ids = [f"a/{k}.jpg" for k in range(n)]
    results = tmp_path / "results.csv"
    dist = write_results_csv(results, ids, gt[:, 0], gt[:, 1], pred[:, 0], pred[:, 1])
    lines = results.read_bytes().split(b"\r\n")
    assert lines[0] == b"img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance"
    assert lines[n + 1] == b"" and lines[n + 2].startswith(b"street acc (1km),city acc (25km)")
    assert read_results_csv(results).summary["mean deviation (km)"] == round(float(dist.mean()), 2)
    meta = tmp_path / "meta.csv"
    labels = np.arange(n) % 3
    meta.write_text("IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,"
                    "Prob_natural,Prob_urban\n" + "".join(
                        f"{i},x,0,0,{s},0,0,0.3,0.3,0.4\n" for i, s in zip(ids, labels)))
    scores = score_file(results, meta)
    assert scores["all"] == summarize(dist)
    assert scores["all"]["count"] == n
    for k, concept in enumerate(("indoor", "natural", "urban")):
        assert scores[concept] == summarize(dist[labels == k])
    out = subprocess.run([sys.executable, str(REPO / "tools" / "score_predictions.py"),
                          f"--predictions_csv={results}", f"--meta_csv={meta}"],
                         capture_output=True, text=True, check=True)
    printed = json.loads(out.stdout)
    assert printed["all"]["accuracy"]["25"] == pytest.approx(scores["all"]["accuracy"]["25"])
    assert printed["urban"]["median_km"] == pytest.approx(scores["urban"]["median_km"])


def test_bad_results_and_meta(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("img_id,gt_lat,predicted_lat\n1,2,3\n")
    with pytest.raises(InputError, match="no column gt_long"):
        score_file(bad)
    bad.write_text("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance\n"
                   "a,1,2,3,4,5\nb,1,x,3,4,5\n")
    with pytest.raises(InputError, match="line 3"):
        score_file(bad)
    good = tmp_path / "good.csv"
    write_results_csv(good, ["a", "b"], [0, 0], [0, 0], [1, 1], [1, 1])
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\na,0,0\n")
    with pytest.raises(InputError, match="meta.csv: no column 'S3_Label'"):
        score_file(good, meta)
    meta.write_text("IMG_ID,LAT,LON,S3_Label\na,0,0,0\n")
    with pytest.raises(InputError, match="no row for image 'b'"):
        score_file(good, meta)
    meta.write_text("IMG_ID,LAT,LON,S3_Label\na,0,0,0\nb,0,0,7\n")
    with pytest.raises(InputError, match=r"line 3, IMG_ID 'b'\): S3_Label is 7.0"):
        score_file(good, meta)
    out = subprocess.run([sys.executable, str(REPO / "tools" / "score_predictions.py"),
                          f"--predictions_csv={tmp_path / 'missing.csv'}"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "missing.csv: predictions file not found" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.shared_data
def test_published_results_file_scores_table6_and_table4():
    """Table 6, base(L, m) on Im2GPS: 13.5 / 36.3 / 50.6 / 64.1 / 79.7 %; Table 4: 19 / 80 / 138 images."""
    results_csv = PUBLISHED / "results" / "im2gps" / "base_L-m.csv"
    meta_csv = PUBLISHED / "meta" / "im2gps_places365.csv"
    if not results_csv.exists():
        pytest.skip(f"{results_csv} is absent (../shared data is read in place, never copied)")
    out = _score_main(f"--predictions_csv={results_csv}", f"--meta_csv={meta_csv}")
    assert out.returncode == 0, out.stderr[-2000:]
    scores = json.loads(out.stdout)
    percent = [round(100 * scores["all"]["accuracy"][r], 1) for r in ("1", "25", "200", "750", "2500")]
    assert percent == [13.5, 36.3, 50.6, 64.1, 79.7]
    assert scores["all"]["count"] == 237
    assert [scores[c]["count"] for c in ("indoor", "natural", "urban")] == [19, 80, 138]
    stated = read_results_csv(results_csv).summary
    assert stated["mean deviation (km)"] == 1999.38
    assert scores["all"]["mean_km"] == pytest.approx(1999.38, abs=0.005)
