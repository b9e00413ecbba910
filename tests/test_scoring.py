"""The published results format: reading and writing it, its summary block checked against its rows."""
import subprocess
import sys

import numpy as np
import pytest

from geoest.errors import InputError
from geoest.geo.scoring import read_results_csv, write_results_csv
from geoest.inference.scene_scores import score_file

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _score_main(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "score_predictions.py"), *args],
                          capture_output=True, text=True)


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
