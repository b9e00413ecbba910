"""python -m geoest.predict: a CSV row per readable photo (JPEG or PNG), corrupt files reported
and skipped, a GeoJSON map of the photos and their top cells, and resume."""
import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers
from geoest.geo.distance import THRESHOLDS_KM
from geoest.geo.distance_temperature import save_distance_temperature, sharpen
from geoest.geo.distance_weights import WithinWeights, within_key
from geoest.inference import HIERARCHY, Locator, crop_probabilities

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    parts = helpers.partitionings(1500)
    model_dir = root / "run"
    helpers.save_model_dir(helpers.sharp_geo_model(parts, SIZE), parts, model_dir)
    photos = root / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(helpers.image_bytes(48, 64, seed=1))
    (photos / "b.png").write_bytes(helpers.image_bytes(70, 40, seed=2, fmt="PNG"))
    (photos / "c.jpg").write_bytes(helpers.image_bytes(40, 40, seed=3)[:200])    # truncated JPEG
    (photos / "d.jpg").write_bytes(b"")                                          # zero bytes
    (photos / "e.jpg").write_bytes(helpers.image_bytes(64, 48, seed=4))
    return {"root": root, "parts": parts, "model_dir": model_dir, "photos": photos}


def _predict(setup, output, *extra):
    return subprocess.run([sys.executable, "-m", "geoest.predict", f"--model_dir={setup['model_dir']}",
                           f"--images={setup['photos']}/*", f"--output={output}", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_csv_geojson_and_unreadable_files(setup, tmp_path):
    output, geojson_path = tmp_path / "predictions.csv", tmp_path / "map.geojson"
    result = _predict(setup, output, f"--geojson={geojson_path}", "--top_k=3")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _rows(output)
    photos = setup["photos"]
    assert [r["image"] for r in rows] == [str(photos / n) for n in ("a.jpg", "b.png", "e.jpg")]
    for bad in ("c.jpg", "d.jpg"):
        assert f"unreadable, skipped: {photos / bad}" in result.stderr
    assert "3 photos located" in result.stdout

    # the rows are the model's three-crop, hierarchical, Class2GPS answer for each photo
    from geoest.data.pipeline import image_dataset
    from geoest.inference.modeldir import load_geo_model

    geo_model = load_geo_model(setup["model_dir"])
    (batch,) = list(image_dataset([r["image"] for r in rows], 8, image_size=SIZE).as_numpy_iterator())
    probs = {k: v.numpy() for k, v in crop_probabilities(geo_model.model, batch["crops"]).items()}
    located = Locator(setup["parts"]).locate(probs, top_k_cells=3)
    fine = setup["parts"][-1]
    for i, row in enumerate(rows):
        assert row["cell"] == fine.tokens[located[HIERARCHY].classes[i]] == row["hierarchy_cell"]
        np.testing.assert_allclose([float(row["lat"]), float(row["lon"])],
                                   [located[HIERARCHY].lat_deg[i], located[HIERARCHY].lon_deg[i]], atol=1e-6)
        assert row["top_cells"].split() == [fine.tokens[c] for c in located[HIERARCHY].top_classes[i]]
        for p in setup["parts"]:
            assert row[f"{p.name}_cell"] == p.tokens[located[p.name].classes[i]]
        probabilities = [float(x) for x in row["top_probabilities"].split()]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < probabilities[0] <= 1

    collection = json.loads(geojson_path.read_text())
    points = [f for f in collection["features"] if f["geometry"]["type"] == "Point"]
    polygons = [f for f in collection["features"] if f["geometry"]["type"] == "Polygon"
                and "region" not in f["properties"]]
    assert len(points) == 3 and len(polygons) == 3 * 3
    regions = [f for f in collection["features"] if "region" in f["properties"]]
    assert [f["properties"]["cell"] for f in regions if f["properties"]["image"] == rows[0]["image"]] == \
        rows[0]["region_cells_90"].split()
    assert points[0]["properties"]["radius_km_90"] == pytest.approx(float(rows[0]["radius_km_90"]))
    assert geojson_path.with_suffix(".png").stat().st_size > 0
    assert points[0]["geometry"]["coordinates"] == pytest.approx([float(rows[0]["lon"]), float(rows[0]["lat"])])
    assert [f["properties"]["cell"] for f in polygons[:3]] == rows[0]["top_cells"].split()


def test_predict_resumes(setup, tmp_path):
    """In-process (what the main runs): a second run adds only the photos not yet in the CSV."""
    from geoest.data.pipeline import image_dataset
    from geoest.inference.methods import load_methods
    from geoest.inference.prediction import predict_images

    (method,), size = load_methods({"run": setup["model_dir"]})
    paths = [str(setup["photos"] / n) for n in ("a.jpg", "b.png", "c.jpg", "e.jpg")]
    batches = lambda todo: image_dataset(todo, 2, image_size=size).as_numpy_iterator()
    output = tmp_path / "predictions.csv"
    first = predict_images(method, paths, output, batches)
    assert first == {"predicted": 3, "skipped_done": 0, "unreadable": [paths[2]], "nan": []}
    rows = _rows(output)
    with open(output, "w", newline="") as f:   # pretend the run stopped after the first photo
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    second = predict_images(method, paths, output, batches)
    assert second == {"predicted": 2, "skipped_done": 1, "unreadable": [paths[2]], "nan": []}
    resumed = _rows(output)
    assert [r["image"] for r in resumed] == [r["image"] for r in rows]
    for got, expected in zip(resumed, rows):   # same answers (batches differ: float noise only)
        assert {k: v for k, v in got.items() if "cell" in k} == {k: v for k, v in expected.items() if "cell" in k}
        assert float(got["probability"]) == pytest.approx(float(expected["probability"]), rel=1e-4)


def test_predict_reports_no_matching_files(setup, tmp_path):
    result = subprocess.run([sys.executable, "-m", "geoest.predict", f"--model_dir={setup['model_dir']}",
                             f"--images={tmp_path}/*.jpg", f"--output={tmp_path / 'p.csv'}"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode != 0 and "no files match" in result.stderr and "Traceback" not in result.stderr


def helpers_model_fingerprint(model_dir) -> str:
    from geoest.inference.calibration import model_fingerprint
    from geoest.inference.modeldir import model_file

    return model_fingerprint(model_file(model_dir))


def test_predict_with_distance_weights_gives_p_within_and_the_quantile_radius(setup, tmp_path):
    """W_R written by python -m geoest.within_weights into the model dir: P(error <= R) per paper
    threshold, equal to the library's on the model's distribution, and R_p the quantile radius."""
    import shutil

    from geoest.data.pipeline import image_dataset
    from geoest.inference.modeldir import load_geo_model

    model_dir = tmp_path / "run"
    shutil.copytree(setup["model_dir"], model_dir)
    lat, lon = helpers.clustered_points(1500)
    meta = tmp_path / "train.csv"
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{i}.jpg,{a},{o}\n" for i, (a, o) in enumerate(zip(lat, lon))))
    fine = setup["parts"][-1]
    fine_csv = tmp_path / "fine.csv"
    fine.to_csv(fine_csv)
    written = subprocess.run([sys.executable, "-m", "geoest.within_weights", f"--meta_csv={meta}",
                              f"--partitioning={fine_csv}", f"--output={model_dir}"],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
    assert written.returncode == 0, written.stderr[-3000:]
    output = tmp_path / "predictions.csv"
    result = subprocess.run([sys.executable, "-m", "geoest.predict", f"--model_dir={model_dir}",
                             f"--images={setup['photos']}/*", f"--output={output}"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no distance weights" not in result.stderr
    rows = _rows(output)
    keys = [within_key(r) for r in THRESHOLDS_KM]
    weights = WithinWeights.load(model_dir, fine)
    geo_model = load_geo_model(model_dir)
    (batch,) = list(image_dataset([r["image"] for r in rows], 8, image_size=SIZE).as_numpy_iterator())
    probs = {k: v.numpy() for k, v in crop_probabilities(geo_model.model, batch["crops"]).items()}
    f_star = Locator(setup["parts"]).cell_probabilities(probs)[HIERARCHY]
    predicted = np.argmax(f_star, axis=1)
    expected = weights.within(f_star, predicted, THRESHOLDS_KM)
    radii = weights.radius(f_star, predicted, (0.5, 0.9))
    for i, row in enumerate(rows):
        got = [float(row[k]) for k in keys]
        assert got == sorted(got) and 0.0 <= got[0] and got[-1] <= 1.0
        np.testing.assert_allclose(got, expected[i], atol=1e-4)
        np.testing.assert_allclose([float(row["radius_km_50"]), float(row["radius_km_90"])], radii[i], rtol=1e-3)

    model = helpers_model_fingerprint(model_dir)               # the distance temperature: applied before W_R
    save_distance_temperature(model_dir, 2.0, weights, model)
    tempered_csv = tmp_path / "tempered.csv"
    result = subprocess.run([sys.executable, "-m", "geoest.predict", f"--model_dir={model_dir}",
                             f"--images={setup['photos']}/*", f"--output={tempered_csv}"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = weights.within(sharpen(f_star, 2.0), predicted, THRESHOLDS_KM)
    for i, row in enumerate(_rows(tempered_csv)):
        np.testing.assert_allclose([float(row[k]) for k in keys], expected[i], atol=1e-4)
    save_distance_temperature(model_dir, 2.0, weights, "0" * 64)     # fitted for another model file
    refused = subprocess.run([sys.executable, "-m", "geoest.predict", f"--model_dir={model_dir}",
                              f"--images={setup['photos']}/*", f"--output={tmp_path / 'refused.csv'}"],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
    assert refused.returncode == 2 and "distance_temperature.json: fitted for other" in refused.stderr
    assert len(refused.stderr.strip().splitlines()[-1]) < 400 and "Traceback" not in refused.stderr

    plain = _predict(setup, tmp_path / "plain.csv")           # no weights: one clear line, the cell-mean approximation
    assert plain.returncode == 0 and "no distance weights W_R in" in plain.stderr
    assert "the cell-mean approximation" in plain.stderr
    means = WithinWeights.from_means(fine)
    plain_rows = _rows(tmp_path / "plain.csv")
    probs = {k: v.numpy() for k, v in crop_probabilities(
        geo_model.model, next(image_dataset([r["image"] for r in plain_rows], 8, image_size=SIZE)
                              .as_numpy_iterator())["crops"]).items()}
    f_star = Locator(setup["parts"]).cell_probabilities(probs)[HIERARCHY]
    expected = means.within(f_star, f_star.argmax(axis=1), THRESHOLDS_KM)
    for i, row in enumerate(plain_rows):
        np.testing.assert_allclose([float(row[k]) for k in keys], expected[i], atol=1e-4)
