"""How scores look to people: the Table 6 layout (and the paper's rows beside it), the per-scene
tables, calibration lines, and plots written as real PNGs. Nothing here measures."""
import numpy as np
from PIL import Image

from geoest.geo.scoring import summarize
from geoest.inference import report
from geoest.inference.core import HIERARCHY
from inference_helpers import partitionings


def _summary(dist_km):
    return summarize(np.asarray(dist_km, np.float64))


def test_table6_lays_out_percent_within_each_radius_count_and_median():
    rows = [("base_M (f*)", _summary([0.5, 10.0, 100.0, 1000.0])), ("trivial (cells)", _summary([5000.0] * 3))]
    lines = report.table6(rows).split("\n")
    assert lines[0].split() == ["Method", "Street", "1", "km", "City", "25", "km", "Region", "200", "km", "Country",
                                "750", "km", "Continent", "2,500", "km", "N", "median", "km"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["base_M", "(f*)", "25.0", "%", "50.0", "%", "75.0", "%", "75.0", "%", "100.0", "%",
                                "4", "55"]
    assert lines[3].split()[-2:] == ["3", "5000"] and len({len(line) for line in lines}) == 1   # one width
    with_paper = report.table6(rows, reference="im2gps").split("\n")
    assert [with_paper[k].split() for k in (0, 2, 3)] == [lines[k].split() for k in (0, 2, 3)]
    assert with_paper[4].startswith("paper, im2gps:")
    assert with_paper[7].split() == ["base(L,", "m)", "13.5", "%", "36.3", "%", "50.6", "%", "64.1", "%", "79.7", "%"]


def test_scene_tables_follow_the_photos_concepts():
    dist = np.array([1.0, 30.0, 300.0, 3000.0])
    scene = np.array([0, 2, 2, -1])
    summary = {HIERARCHY: {"all": _summary(dist), "indoor": _summary(dist[:1]), "urban": _summary(dist[1:3])}}
    method = report.MethodReport("base_M", HIERARCHY, {}, {HIERARCHY: dist}, summary, {}, ())
    assert method.label == "base_M (f*)" and report.output_label("cells_50_1000") == "cells_50_1000"
    table, per_scene = report.evaluation_tables([method], scene)
    assert table.split("\n")[2].split()[:2] == ["base_M", "(f*)"]
    assert "indoor (1 images):" in per_scene and "urban (2 images):" in per_scene and "natural" not in per_scene


def test_calibration_lines():
    summary = {"cell_coverage": {"50_0": 0.41, "90_0": 0.83}, "ece": 0.0421}
    lines = report.report_lines({"temperatures": {"fine": 1.5, HIERARCHY: 0.8}, "before": summary,
                                 "after": {**summary, "ece": 0.012}})
    assert lines[0] == "temperatures: fine 1.500, hierarchy 0.800"
    assert lines[1].startswith("before temperature scaling:") and "mass 0.5 41.0%, 0.9 83.0%" in lines[1]
    assert lines[1].endswith("ECE of the top cell's probability 0.042") and lines[2].endswith("0.012")


def test_plots_are_real_pngs(tmp_path):
    dist = {"a": np.geomspace(0.5, 15000, 50), "b": np.geomspace(5, 20000, 50)}
    report.plot_accuracy(dist, tmp_path / "accuracy.png", title="50 photos")
    bins = {"confidence": [0.1, 0.5, 0.9], "accuracy": [0.05, 0.4, 0.95], "count": [10, 0, 5]}
    report.plot_reliability({"before": {"reliability": bins, "ece": 0.1}}, tmp_path / "reliability.png")
    report.plot_cells(partitionings(n=600)[0], tmp_path / "cells.png")
    rng = np.random.default_rng(0)
    error = rng.uniform(0, 3000, 80)
    p_within = np.clip(1 - error[:, None] / np.array([1, 25, 200, 750, 2500])[None] / 10, 0, 1)
    report.plot_ranking_curves(error, p_within, (1.0, 25.0, 200.0, 750.0, 2500.0), tmp_path / "ranking.png")
    for name in ("accuracy", "reliability", "cells", "ranking"):
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) > 200
            assert len(np.unique(np.asarray(image.convert("L")))) > 10     # something drawn
