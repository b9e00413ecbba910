"""How sure a guess is, end to end: a capped SavedModel served by plain TensorFlow, evaluate's
coverage and calibration report, photos with NaN probabilities, and bad flags and files."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers
from geoest.geo import s2cell
from geoest.geo.cell_outlines import cell_centers, cell_outlines, extents_km
from geoest.geo.distance_temperature import save_distance_temperature
from geoest.geo.distance_weights import WithinWeights
from geoest.geo.how_sure import evaluation_figures, photo_scores
from geoest.geo.resolution_cap import ResolutionCap

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
CAP_KM = 200.0

SERVE = helpers.SERVE_WITHOUT_GEOEST + """
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["serving_default"](image_bytes=tf.constant([open(p, "rb").read() for p in sys.argv[3:]]))
assert not any(m.startswith("geoest") for m in sys.modules)
json.dump({k: (np.char.decode(v.numpy().astype("S")) if v.dtype == tf.string else v.numpy()).tolist()
           for k, v in out.items()}, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sure")
    parts = helpers.partitionings(1500)
    model_dir = root / "run"
    helpers.calibrated_model_dir(parts, model_dir, SIZE)
    photos = []
    for i in range(12):
        photos.append(root / f"p{i}.jpg")
        photos[-1].write_bytes(helpers.image_bytes(40 + 3 * i, 60 - 2 * i, seed=10 + i))
    return {"root": root, "parts": parts, "model_dir": model_dir, "photos": photos}


def _main(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_capped_saved_model_never_answers_finer_than_the_cap(setup):
    export_dir = setup["root"] / "capped" / "1"
    result = _main("geoest.export", f"--model_dir={setup['model_dir']}", f"--export_dir={export_dir}",
                   f"--max_resolution_km={CAP_KM:g}", "--min_confidence=0.2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(calibrated)" in result.stdout
    served_json = setup["root"] / "served.json"
    result = subprocess.run([sys.executable, "-c", SERVE, str(export_dir), str(served_json),
                             *map(str, setup["photos"])], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(served_json.read_text())
    # only capped outputs: no partitioning's own answer, no top cells
    assert not [k for k in served if k.startswith(("coarse", "middle", "fine", "hierarchy"))]
    tokens = set(served["cell"]) | set(served["answer_cell"]) - {""}
    tokens |= {t for key in ("region_cells_50", "region_cells_90") for row in served[key] for t in row if t}
    ids = np.array([s2cell.token_to_id(t) for t in sorted(tokens)], np.uint64)
    extent = dict(zip(sorted(tokens), extents_km(cell_outlines(ids))))
    assert min(extent.values()) >= CAP_KM
    centers = dict(zip(sorted(tokens), cell_centers(ids)))
    cap = ResolutionCap(setup["parts"], CAP_KM)
    node = dict(zip(cap.tokens, cap.node_centers))
    for i in range(len(setup["photos"])):
        # the point is the capped area's own point (a partitioning cell's mean or the S2 centre)
        np.testing.assert_allclose([served["lat"][i], served["lon"][i]], node[served["cell"][i]], atol=1e-9)
        assert served["radius_km_50"][i] >= CAP_KM and served["radius_km_90"][i] >= served["radius_km_50"][i]
        assert served["level"][i] in ("coarse", "middle", "fine", "none")
    assert len(centers) == len(tokens)
    assert len(set(served["cell"])) > 1      # the photos differ


def test_evaluate_reports_coverage_before_and_after_and_skips_nan(setup, tmp_path):
    from geoest.inference import Locator
    from geoest.inference.calibration import load_calibration
    from geoest.inference.evaluation import evaluate
    from geoest.inference.methods import Method, model_method
    from geoest.inference.modeldir import load_geo_model

    geo_model = load_geo_model(setup["model_dir"])
    calibration = load_calibration(geo_model)
    method = model_method("tiny", geo_model, calibration=calibration)
    fine = setup["parts"][-1]
    rng = np.random.default_rng(0)
    truth = fine.centers[rng.integers(len(fine), size=12)]
    crops = rng.uniform(-1, 1, (12, 3, SIZE, SIZE, 3)).astype(np.float32)
    batches = [{"crops": crops[i:i + 4], "id": np.array([f"img{j}" for j in range(i, i + 4)]),
                "lat": truth[i:i + 4, 0], "lon": truth[i:i + 4, 1]} for i in range(0, 12, 4)]

    def broken(batch):   # a second method whose probabilities hold NaN for one photo
        probs = method.probabilities(batch)
        probs = {k: np.array(v) for k, v in probs.items()}
        for k in probs:
            probs[k][batch["id"] == "img5"] = np.nan
        return probs

    methods = [method, Method("broken", Locator(setup["parts"]), broken, calibration=calibration)]
    evaluate(methods, batches, tmp_path, total=12)
    report = json.loads((tmp_path / "confidence.json").read_text())
    assert report["broken"]["skipped_nan"] == ["img5"]
    for name in ("tiny", "broken"):
        for key in ("before", "after"):
            summary = report[name][key]
            assert summary["images"] == 11
            assert set(summary["cell_coverage"]) == {"50", "90"}
            assert 0 <= summary["ece"] <= 1
            assert summary["cell_coverage"]["90"] >= summary["cell_coverage"]["50"]
        radius = report[name]["within"]["radius"]       # no weights in the model dir: the cell-mean approximation
        assert report[name]["within"]["weights"] == "means"
        assert set(radius) == {"before", "after"} and radius["after"]["90"]["coverage"] >= radius["after"]["50"]["coverage"]
        assert (tmp_path / name / "reliability.png").stat().st_size > 0
        assert (tmp_path / name / "accuracy_coverage.png").stat().st_size > 0
    results = (tmp_path / "tiny" / "results_hierarchy.csv").read_text()
    assert "img5" not in results and "img4" in results
    # temperatures change how sure an answer is, never the answer (Table 6 stays the paper's)
    evaluate([model_method("tiny", geo_model)], batches, tmp_path / "raw", total=12)
    uncalibrated = (tmp_path / "raw" / "tiny" / "results_hierarchy.csv").read_text().splitlines()
    rows = [line for line in results.splitlines() if line.startswith("img")]     # the summary block differs
    assert [line for line in uncalibrated if line.startswith("img") and not line.startswith("img5,")] == rows


@pytest.mark.parametrize("module,flag,named", [
    ("geoest.predict", "--region_mass=0.5,1.2", "--region_mass"),
    ("geoest.predict", "--min_confidence=1.5", "--min_confidence"),
    ("geoest.predict", "--max_resolution_km=0", "--max_resolution_km"),
    ("geoest.export", "--max_resolution_km=-5", "--max_resolution_km"),
    ("geoest.export", "--region_mass=0", "--region_mass"),
])
def test_bad_flags_are_one_line_naming_the_flag(setup, module, flag, named):
    where = (f"--images={setup['photos'][0]}" if module == "geoest.predict"
             else f"--export_dir={setup['root'] / 'never'}")
    result = _main(module, f"--model_dir={setup['model_dir']}", where, flag)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and named in lines[0], result.stderr[-2000:]


def test_temperature_file_of_another_model_is_refused(setup, tmp_path):
    other = tmp_path / "other"
    helpers.save_model_dir(helpers.tiny_model({p.name: len(p) for p in setup["parts"]}, SIZE, seed=5),
                           setup["parts"], other)
    foreign = setup["model_dir"] / "calibration.json"
    result = _main("geoest.predict", f"--model_dir={other}", f"--images={setup['photos'][0]}",
                   f"--output={tmp_path / 'p.csv'}", f"--temperatures={foreign}")
    assert result.returncode == 2
    assert f"temperature file {foreign} was fitted for another model" in result.stderr


def test_evaluate_reports_p_within_radius_cells_and_back_off(setup, tmp_path):
    """A model dir with distance weights W_R and a distance temperature: evaluate's confidence.json
    holds <method>/within, each figure equal to the library's on the same photos, the photos in no cell
    reported apart, and accuracy_coverage.png ranked by P(error <= R)."""
    import shutil

    from geoest.inference.calibration import model_fingerprint
    from geoest.inference.evaluation import evaluate
    from geoest.inference.methods import load_methods

    model_dir = tmp_path / "run"
    shutil.copytree(setup["model_dir"], model_dir)
    fine = setup["parts"][-1]
    lat, lon = helpers.clustered_points(1500, seed=3)
    weights = WithinWeights.build(fine, lat, lon)
    weights.save(model_dir)
    save_distance_temperature(model_dir, 1.5, weights, model_fingerprint(model_dir / "best.keras"))
    (method,), _ = load_methods({"tiny": model_dir})
    assert method.within_weights.digest == weights.digest and method.distance_temperature == 1.5
    rng = np.random.default_rng(4)
    truth = fine.centers[rng.integers(len(fine), size=16)] + rng.normal(size=(16, 2)) * 0.3
    truth[:3] = [-50.0, -130.0]                       # in no cell: the South Pacific
    crops = rng.integers(0, 256, (16, 3, SIZE, SIZE, 3)).astype(np.uint8)
    batches = [{"crops": crops[i:i + 8], "id": np.array([f"img{j}" for j in range(i, i + 8)]),
                "lat": truth[i:i + 8, 0], "lon": truth[i:i + 8, 1]} for i in range(0, 16, 8)]
    evaluate([method], batches, tmp_path / "eval", total=16, min_confidence=0.3)
    got = json.loads((tmp_path / "eval" / "confidence.json").read_text())["tiny"]["within"]

    probs = method.probabilities({"crops": crops})
    cells = method.distributions(probs, distance=True)
    assert set(cells) == {"before", "after", "distance"}
    predicted = np.argmax(cells["before"], axis=-1)
    truth_class = fine.assign(truth[:, 0], truth[:, 1])
    expected = {v: photo_scores(weights, c, predicted, truth_class, truth[:, 0], truth[:, 1], (0.5, 0.9))
                for v, c in cells.items()}
    want = evaluation_figures(expected, (0.5, 0.9), min_confidence=0.3)
    assert got["in_no_cell"] == pytest.approx(np.mean(truth_class < 0)) and got["in_no_cell"] >= 3 / 16
    assert got["ranked"] == "distance"
    for radius in ("1", "25", "200", "750", "2500"):
        for v in ("before", "after", "distance"):
            for k in ("predicted", "observed", "ece"):
                assert got["events"][radius][v][k] == pytest.approx(want["events"][radius][v][k], abs=1e-4)
        assert got["ranking"][radius]["half"] == pytest.approx(want["ranking"][radius]["half"])
    for v in ("before", "after", "distance"):
        for p in ("50", "90"):
            assert got["radius"][v][p]["coverage"] == pytest.approx(want["radius"][v][p]["coverage"])
            assert got["radius"][v][p]["cell_coverage"] == pytest.approx(want["radius"][v][p]["cell_coverage"])
            assert got["radius"][v][p]["median_km"] == pytest.approx(want["radius"][v][p]["median_km"], rel=1e-4)
    assert got["back_off"]["no_answer"] == pytest.approx(want["back_off"]["no_answer"])
    for name, level in want["back_off"]["levels"].items():
        assert got["back_off"]["levels"][name]["answered"] == pytest.approx(level["answered"])
    assert got["back_off"]["q"] == 0.3 and list(got["back_off"]["levels"]) == ["coarse", "middle", "fine"]
    assert (tmp_path / "eval" / "tiny" / "accuracy_coverage.png").stat().st_size > 0


def test_evaluate_refuses_a_bad_min_confidence(setup, tmp_path):
    result = _main("geoest.evaluate", f"--model_dir={setup['model_dir']}", f"--test_records={tmp_path}/*.tfrecord",
                   f"--output_dir={tmp_path / 'eval'}", "--min_confidence=1.5")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--min_confidence=1.5" in lines[0], result.stderr[-2000:]
