"""The results format and its JSON: reading, writing and scoring the published files."""
import json
import subprocess
import sys

import numpy as np
import pytest

from geoest.errors import InputError
from geoest.geo.scoring import read_results_csv, summarize, write_results_csv
from geoest.inference.scoring import score_file

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


def test_mixed_line_endings_and_the_summary_is_checked(tmp_path):
    ids = ["a.jpg", "b.jpg", "c.jpg"]
    written = tmp_path / "written.csv"
    dist = write_results_csv(written, ids, [0, 10, 20], [0, 10, 20], [0, 10.1, 30], [0.001, 10, 20])
    lines = written.read_bytes().split(b"\r\n")
    mixed = tmp_path / "mixed.csv"   # LF on some lines, CRLF on others, as the authors' files
    mixed.write_bytes(b"".join(line + (b"\n" if k % 2 else b"\r\n") for k, line in enumerate(lines[:-1])))
    results = read_results_csv(mixed)
    assert results.ids == ids
    np.testing.assert_array_equal(results.dist_km, dist)
    assert results.summary == read_results_csv(written).summary
    no_summary = tmp_path / "rows_only.csv"
    no_summary.write_bytes(b"\n".join(lines[:4]) + b"\n")
    assert read_results_csv(no_summary).summary is None
    assert score_file(no_summary) == score_file(written)
    wrong = lines[:6] + [b"0.5,0.666667,0.666667,0.666667,1.0,%.2f" % dist.mean(), b""]
    tampered = tmp_path / "tampered.csv"
    tampered.write_bytes(b"\r\n".join(wrong))
    with pytest.raises(InputError, match=r"tampered.csv: line 7: the summary gives street acc \(1km\) = 0.5 "
                                         r"but its 3 rows give 0.333333"):
        read_results_csv(tampered)
    out = _score_main(f"--predictions_csv={tampered}")
    assert out.returncode == 2 and "line 7" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("text, message", [
    ("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance\r\n", "a header and no rows"),
    ("img_id,gt_lat,predicted_lat,gt_long,great_circle_distance\na,1,2,3,4\n", "line 1: no column predicted_long"),
    ("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance\na,1,2,3,4,5\nb,1,2,3,,5\n",
     "line 3: expected 4 numbers"),
    ("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance\na,1,2,3,4,5\nb,1,2\n",
     "line 3: 3 fields"),
    ("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance\na,1,2,3,4,5\n\nsomething else\n",
     "line 4: after the rows and an empty line expected the summary header"),
    ("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance\na,1,2,3,4,5\nb,1,2,3,4,5\na,1,2,3,4,5\n",
     r"line 4: img_id 'a' appears again \(first on line 2\); each photo is scored once"),
    ("img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance,gt_lat\na,1,2,3,4,5,9\n",
     r"line 1: the column 'gt_lat' appears twice \(columns 2 and 7\)"),
])
def test_malformed_results_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "results.csv"
    path.write_text(text, newline="")
    with pytest.raises(InputError, match=message):
        read_results_csv(path)


def test_a_photo_on_two_rows_is_one_line_from_score_predictions(tmp_path):
    """A results file holding a photo twice would score it twice (count 301 of 300): refused."""
    written = tmp_path / "results.csv"
    write_results_csv(written, ["a.jpg", "b.jpg"], [0, 10], [0, 10], [0, 10.1], [0.001, 10])
    lines = written.read_bytes().split(b"\r\n")
    twice = tmp_path / "twice.csv"
    twice.write_bytes(b"\r\n".join(lines[:3] + lines[1:2]) + b"\r\n")
    out = _score_main(f"--predictions_csv={twice}")
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert errors == [f"error: {twice}: line 4: img_id 'a.jpg' appears again (first on line 2); each photo is "
                      "scored once"]
