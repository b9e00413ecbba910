"""How sure a guess is, end to end: a capped SavedModel served by plain TensorFlow, evaluate's
coverage and calibration report, photos with NaN probabilities, and bad flags and files."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers
from geoest.geo import confidence as conf

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
CAP_KM = 200.0

SERVE = """
import importlib.abc, json, sys
class NoGeoest(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "geoest":
            raise ImportError("the served model must not need geoest")
sys.meta_path.insert(0, NoGeoest())
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["serving_default"](image_bytes=tf.constant([open(p, "rb").read() for p in sys.argv[3:]]))
assert not any(m.startswith("geoest") for m in sys.modules)
json.dump({k: (np.char.decode(v.numpy().astype("S")) if v.dtype == tf.string else v.numpy()).tolist()
           for k, v in out.items()}, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from geoest.inference.calibration import Calibration, model_fingerprint

    root = tmp_path_factory.mktemp("sure")
    parts = helpers.partitionings(1500)
    model_dir = root / "run"
    model = helpers.tiny_model({p.name: len(p) for p in parts}, SIZE)
    helpers.save_model_dir(model, parts, model_dir)
    Calibration({"coarse": 1.3, "middle": 0.8, "fine": 2.0, "hierarchy": 1.7},
                model_fingerprint(model_dir / "best.keras"), {p.name: len(p) for p in parts}).save(model_dir)
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
    from geoest.geo import s2cell
    ids = np.array([s2cell.token_to_id(t) for t in sorted(tokens)], np.uint64)
    extent = dict(zip(sorted(tokens), conf.extents_km(conf.cell_outlines(ids))))
    assert min(extent.values()) >= CAP_KM
    centers = dict(zip(sorted(tokens), conf.cell_centers(ids)))
    cap = conf.ResolutionCap(setup["parts"], CAP_KM)
    node = dict(zip(cap.tokens, cap.node_centers))
    for i in range(len(setup["photos"])):
        # the point is the capped area's own point (a partitioning cell's mean or the S2 centre)
        np.testing.assert_allclose([served["lat"][i], served["lon"][i]], node[served["cell"][i]], atol=1e-9)
        assert served["radius_km_50"][i] >= CAP_KM / 2 and served["radius_km_90"][i] >= served["radius_km_50"][i]
        assert served["level"][i] in ("coarse", "middle", "fine", "none")
    assert len(centers) == len(tokens)
    assert len(set(served["cell"])) > 1      # the photos differ


def test_evaluate_reports_coverage_before_and_after_and_skips_nan(setup, tmp_path):
    from geoest.inference import Locator
    from geoest.inference.calibration import load_calibration
    from geoest.inference.evaluation import Method, evaluate, model_method
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
            assert set(summary["coverage"]) == {"50", "90"}
            assert 0 <= summary["ece"] <= 1
            assert summary["coverage"]["90"] >= summary["coverage"]["50"]
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
