"""Great-circle distance, accuracy at Table 6's radii, the results format and its JSON."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from geoest.errors import InputError
from geoest.geo import accuracy_at, great_circle_km
from geoest.geo.distance import great_circle_km_tf
from geoest.geo.scoring import score_file, summarize, write_results_csv

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_known_distances():
    # A quarter of the equator, pole to pole, one degree of latitude, across the antimeridian.
    got = great_circle_km([0, 90, 0, 0], [0, 0, 0, 179.5], [0, -90, 1, 0], [90, 0, 0, -179.5])
    circumference = 2 * np.pi * 6371.0
    np.testing.assert_allclose(got, [circumference / 4, circumference / 2, circumference / 360,
                                     circumference / 360], rtol=1e-12)
    assert great_circle_km(48.1, 11.6, 48.1, 11.6) == 0.0
    np.testing.assert_allclose(great_circle_km_tf([0.0, 90.0], [0.0, 0.0], [0.0, -90.0],
                                                  [90.0, 0.0]).numpy(), got[:2], rtol=1e-12)


def test_accuracy_at_thresholds_inclusive():
    acc = accuracy_at([0.5, 1.0, 24.0, 300.0, 3000.0])
    assert acc == {1: 0.4, 25: 0.6, 200: 0.6, 750: 0.8, 2500: 0.8}


def test_results_file_round_trip_and_cli(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    gt = rng.uniform(-60, 60, (n, 2))
    pred = gt + rng.normal(0, 3, (n, 2))
    ids = [f"a/{k}.jpg" for k in range(n)]
    results = tmp_path / "results.csv"
    dist = write_results_csv(results, ids, gt[:, 0], gt[:, 1], pred[:, 0], pred[:, 1])
    assert results.read_text().splitlines()[0] == ("img_id,gt_lat,predicted_lat,gt_long,"
                                                    "predicted_long,great_circle_distance")
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
    meta.write_text("IMG_ID,S3_Label\na,0\n")
    with pytest.raises(InputError, match="no row for image 'b'"):
        score_file(good, meta)
    meta.write_text("IMG_ID,S3_Label\na,0\nb,7\n")
    with pytest.raises(InputError, match="line 3: S3_Label"):
        score_file(good, meta)
    out = subprocess.run([sys.executable, str(REPO / "tools" / "score_predictions.py"),
                          f"--predictions_csv={tmp_path / 'missing.csv'}"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "missing.csv: predictions file not found" in out.stderr
    assert "Traceback" not in out.stderr
