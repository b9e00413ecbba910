"""geoest.demo.run, the demo's whole path at a small size: photos -> partitionings -> TFRecords ->
base(M) and ISNs -> Table 6 beside the trivial predictor -> GeoJSON predictions, and a re-run that
resumes."""
import json

import pandas as pd
import pytest

from geoest.demo import run
from geoest.errors import InputError
from geoest.geo import s2cell
from geoest.geo.cell_outlines import cell_outlines, extents_km
from geoest.geo.how_sure import how_sure_lines
from geoest.geo.scoring import read_results_csv
from geoest.inference.core import HIERARCHY

SMALL = dict(num_images=400, seed=1, image_size=48, isns=True, isn_epochs=1, num_predicted=4,
             gin_params=["IMAGE_SIZE = 32", "train.epochs = 2", "train.batch_size = 16",
                         "train_dataset.shuffle_buffer = 200"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run.run_demo(tmp_path_factory.mktemp("demo"), **SMALL)


def test_thresholds_scale_with_the_collection():
    # Table 1's ratios (tau_max 5,000 / 2,000 / 1,000 for 4.7 M photos) at any size: nested levels.
    for num_train in (180, 300, 3000):
        tau_min, (coarse, middle, fine) = run.partition_thresholds(num_train)
        assert 1 <= tau_min < fine < middle < coarse < num_train
    assert run.partition_thresholds(3000)[1][0] > run.partition_thresholds(300)[1][0]


def test_every_artifact_is_in_the_output_folder(demo):
    out = demo.output_dir
    for path in demo.artifacts.values():
        assert path.exists() and out in path.parents
    parts = sorted((out / "partitionings").glob("cells_*.csv"))
    assert len(parts) == 3 and (out / "partitionings" / "cells.png").stat().st_size > 0
    assert (out / "model" / "best.keras").exists() and (out / "model" / "operative_config.gin").exists()
    for concept in ("indoor", "natural", "urban"):
        assert (out / f"isn_{concept}" / "best.keras").exists()
    assert "demo_cnn" in (out / "model" / "operative_config.gin").read_text()
    for name in ("table6.txt", "accuracy.png", "summary.json"):
        assert (out / "evaluation" / name).stat().st_size > 0


def test_table6_rows_and_checks(demo):
    summary = demo.summary
    assert set(summary) == {"base_M", "ISNs", run.TRIVIAL, run.DISTANCE}
    assert HIERARCHY in summary["base_M"] and HIERARCHY in summary["ISNs"]
    num_test = pd.read_csv(demo.output_dir / "photos" / "test.csv").shape[0]
    for method, outputs in summary.items():
        for output, entry in outputs.items():
            if output == "routed_images":
                assert sum(entry.values()) == num_test
                continue
            assert entry["all"]["count"] == num_test
            accuracy = [entry["all"]["accuracy"][k] for k in ("1", "25", "200", "750", "2500")]
            assert accuracy == sorted(accuracy) and 0 <= accuracy[0] and accuracy[-1] <= 1
    # The trivial predictor puts every photo at one place: one distance per photo to it.
    trivial = read_results_csv(next((demo.output_dir / "evaluation" / run.TRIVIAL).glob("results_*.csv")))
    assert len(set(zip(trivial.pred_lat_deg, trivial.pred_lon_deg))) == 1
    assert len(demo.checks) == 3 and all(isinstance(ok, bool) for ok in demo.checks.values())
    table = (demo.output_dir / "evaluation" / "table6.txt").read_text()
    assert "base_M (f*)" in table and "trivial" in table
    saved = json.loads((demo.output_dir / "summary.json").read_text())
    assert saved["checks"] == demo.checks and set(saved["seconds"]) >= {"photos", "train", "evaluate"}


def test_predictions_geojson(demo):
    geojson = json.loads((demo.output_dir / "predictions" / "predictions.geojson").read_text())
    points = [f for f in geojson["features"] if f["geometry"]["type"] == "Point"]
    assert len(points) == SMALL["num_predicted"]
    for point in points:
        lon, lat = point["geometry"]["coordinates"]
        assert -90 <= lat <= 90 and -180 <= lon <= 180
    text = run.closing_summary(demo)
    assert "predictions (CSV) and their map (GeoJSON" in text
    sure = how_sure_lines(json.loads((demo.output_dir / "summary.json").read_text())["how_sure"])
    assert len(demo.findings) == 9 + len(sure) and all(line in text for line in demo.findings)


def test_how_sure_calibration_and_capped_prediction(demo):
    """Beyond the paper: temperatures fitted on validation, coverage before and after, the
    reliability and accuracy-coverage plots, distance-aware targets and one capped answer."""
    out = demo.output_dir
    calibration = json.loads((out / "model" / "calibration.json").read_text())
    assert set(calibration["temperatures"]) == {p.stem for p in (out / "model" / "partitionings").glob("*.csv")} | {
        HIERARCHY}
    report = json.loads((out / "evaluation" / "confidence.json").read_text())
    assert set(report["base_M"]) == {"before", "after", "skipped_nan", "within"}
    assert set(report[run.DISTANCE]) == {"before", "skipped_nan", "within"}     # never calibrated
    assert set(report["base_M"]["within"]["radius"]) == {"before", "after", "distance"}   # R_p: the quantile
    assert report["base_M"]["within"]["weights"] == "photos" and report[run.DISTANCE]["within"]["weights"] == "means"
    for name in ("reliability.png", "accuracy_coverage.png"):
        assert (out / "evaluation" / "base_M" / name).stat().st_size > 0
    assert any("coverage of R_0.5 / R_0.9 after temperature scaling" in line for line in demo.findings)
    capped = pd.read_csv(out / "predictions" / "capped.csv", dtype=str).iloc[0]
    tokens = [capped["cell"], *capped["region_cells_90"].split()]
    extents = extents_km(cell_outlines([s2cell.token_to_id(t) for t in tokens]))
    assert extents.min() >= run.CAP_KM
    assert (out / "predictions" / "predictions.png").stat().st_size > 0
    sure = json.loads((out / "summary.json").read_text())["how_sure"]     # P(error <= R) of base(M, f*)
    assert (out / "model" / "within_weights.npz").stat().st_size > 0 and sure["weights"] == "photos"
    assert set(sure["events"]) == {"25", "200", "750"} and set(sure["ranking"]) == {"25", "750"}
    for by in sure["events"].values():
        assert set(by) == {"raw", "temperatures", "distance", "monotone"}
        assert all(0.0 <= f["ece"] <= 1.0 and 0.0 <= f["predicted"] <= 1.0 for f in by.values())
    assert all(0.0 <= sure["radius"]["distance"][p]["coverage"] <= 1.0 for p in ("50", "90"))
    levels = sure["back_off"]["levels"]
    assert sum(f["answered"] for f in levels.values()) + sure["back_off"]["no_answer"] == pytest.approx(1.0)
    assert any(line.startswith("back-off at q = 0.5") for line in demo.findings)


def test_rerun_resumes_without_retraining(demo):
    model = demo.output_dir / "model" / "best.keras"
    before = model.stat().st_mtime_ns
    again = run.run_demo(demo.output_dir, **SMALL)
    assert model.stat().st_mtime_ns == before
    assert again.summary["base_M"][HIERARCHY]["all"] == demo.summary["base_M"][HIERARCHY]["all"]


def test_other_settings_in_the_same_folder_are_refused(demo):
    with pytest.raises(InputError, match="other settings"):
        run.run_demo(demo.output_dir, **{**SMALL, "seed": 2})
