"""P(error <= R) and R_p inside the SavedModel: a model dir with temperatures, distance weights W_R
and a distance temperature, exported with and without --max_resolution_km=200 and served by plain
TensorFlow (geoest not importable), gives geoest.predict's values for the same photos."""
import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers
from geoest.geo.distance import THRESHOLDS_KM
from geoest.geo.distance_temperature import save_distance_temperature
from geoest.geo.distance_weights import WithinWeights, within_key

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32
CAP_KM = 200.0
MASSES = ("50", "90")

SERVE = helpers.SERVE_WITHOUT_GEOEST + """
images = tf.constant([open(p, "rb").read() for p in sys.argv[3:]])
served = {}
for name in json.loads(sys.argv[2]):
    out = tf.saved_model.load(name).signatures["serving_default"](image_bytes=images)
    served[name] = {k: (np.char.decode(v.numpy().astype("S")) if v.dtype == tf.string else v.numpy()).tolist()
                    for k, v in out.items()}
json.dump(served, open(sys.argv[1], "w"))
"""


def _main(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_within")
    parts = helpers.partitionings(1500)
    model_dir = root / "run"
    fingerprint = helpers.calibrated_model_dir(parts, model_dir, SIZE)
    lat, lon = helpers.clustered_points(1500, seed=3)           # "training photos" of the cells
    weights = WithinWeights.build(parts[-1], lat, lon)
    weights.save(model_dir)
    save_distance_temperature(model_dir, 1.4, weights, fingerprint)
    photos = []
    for i in range(10):
        photos.append(root / f"p{i}.jpg")
        photos[-1].write_bytes(helpers.image_bytes(40 + 3 * i, 60 - 2 * i, seed=30 + i))
    out = {}
    for name, extra in (("free", []), ("capped", [f"--max_resolution_km={CAP_KM:g}"])):
        export_dir = root / name / "1"
        exported = _main("geoest.export", f"--model_dir={model_dir}", f"--export_dir={export_dir}", *extra)
        assert exported.returncode == 0, exported.stderr[-3000:]
        assert "(calibrated)" in exported.stdout and "P(error <= R)" in exported.stdout
        csv_path = root / f"{name}.csv"
        predicted = _main("geoest.predict", f"--model_dir={model_dir}", f"--images={root}/p*.jpg",
                          f"--output={csv_path}", *extra)
        assert predicted.returncode == 0, predicted.stderr[-3000:]
        with open(csv_path, newline="") as f:
            out[name] = {"dir": str(export_dir), "rows": list(csv.DictReader(f))}
    raw_csv = root / "raw.csv"
    predicted = _main("geoest.predict", f"--model_dir={model_dir}", f"--images={root}/p*.jpg", f"--output={raw_csv}",
                      "--raw_probabilities")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    with open(raw_csv, newline="") as f:
        out["free"]["raw_rows"] = list(csv.DictReader(f))
    served_json = root / "served.json"
    result = subprocess.run([sys.executable, "-c", SERVE, str(served_json),
                             json.dumps([out[n]["dir"] for n in out]), *map(str, photos)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(served_json.read_text())
    for name in out:
        out[name]["served"] = served[out[name]["dir"]]
        assert [r["image"] for r in out[name]["rows"]] == [str(p) for p in photos]
    return out


@pytest.mark.parametrize("name", ["free", "capped"])
def test_saved_model_p_within_and_radius_equal_predict(runs, name):
    rows, served = runs[name]["rows"], runs[name]["served"]
    cap = CAP_KM if name == "capped" else 0.0
    for r in THRESHOLDS_KM:
        key = within_key(r)
        got = np.array(served[key], np.float64)
        if r < cap:       # not stated below the cap, by either
            assert np.isnan(got).all() and all(row[key] == "" for row in rows)
            continue
        want = np.array([float(row[key]) for row in rows])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)   # the CSV holds 6 significant digits
        assert ((got >= 0) & (got <= 1)).all()
    for p in MASSES:
        got = np.array(served[f"radius_km_{p}"], np.float64)
        want = np.array([float(row[f"radius_km_{p}"]) for row in rows])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=5e-4)   # the CSV rounds to 0.001 km
        assert (got >= cap).all()
    assert (np.array(served["radius_km_90"]) >= np.array(served["radius_km_50"])).all()
    # the photos differ in how sure the model is of them
    assert len({round(v, 6) for v in served[within_key(750.0)]}) > 1
    # the rest of the answer is predict's too
    assert served["cell"] == [row["cell"] for row in rows]
    np.testing.assert_allclose(served["probability"], [float(row["probability"]) for row in rows], rtol=1e-4)


def test_capped_saved_model_states_nothing_finer_than_the_cap(runs):
    served = runs["capped"]["served"]
    assert not [k for k in served if k.startswith(("coarse", "middle", "fine", "hierarchy"))]
    stated = [k for k in served if k.startswith("p_within_")]
    assert sorted(stated) == sorted(within_key(r) for r in THRESHOLDS_KM)
    for r in THRESHOLDS_KM:
        values = np.array(served[within_key(r)], np.float64)
        assert np.isnan(values).all() if r < CAP_KM else np.isfinite(values).all()
    for p in MASSES:
        assert min(served[f"radius_km_{p}"]) >= CAP_KM


def test_one_probability_per_thing_the_calibrated_one(runs):
    """With temperatures every probability predict and the SavedModel show is the calibrated one (the
    cells stay the model's answer); the uncalibrated ones appear only with --raw_probabilities."""
    rows, served, raw_rows = runs["free"]["rows"], runs["free"]["served"], runs["free"]["raw_rows"]
    assert not [k for k in rows[0] if "raw" in k] and not [k for k in served if "raw" in k]
    for i, row in enumerate(rows):
        top = [float(x) for x in row["top_probabilities"].split()]
        assert top[0] == pytest.approx(float(row["probability"]), rel=1e-5)
        assert float(row["hierarchy_probability"]) == pytest.approx(float(row["probability"]), rel=1e-5)
        np.testing.assert_allclose(served["hierarchy_top_probabilities"][i], top, rtol=1e-4, atol=1e-7)
        for name in ("coarse", "middle", "fine"):
            assert served[f"{name}_probability"][i] == pytest.approx(float(row[f"{name}_probability"]), rel=1e-4)
    assert served["hierarchy_probability"] == pytest.approx(served["probability"], rel=1e-5)
    # asked for: the model's own beside them, for the same cells, and they differ (f* temperature 1.7)
    for row, raw in zip(rows, raw_rows):
        assert {k: v for k, v in raw.items() if "raw" not in k} == row
        assert float(raw["raw_probability"]) == pytest.approx(float(raw["hierarchy_raw_probability"]), rel=1e-5)
    assert any(abs(float(r["raw_probability"]) - float(r["probability"])) > 1e-3 for r in raw_rows)
