"""The SavedModel export: reloaded with plain TensorFlow (no geoest), its outputs equal the
Python path (image_dataset -> three-crop mean -> hierarchy -> Class2GPS) on the same images."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import inference_helpers as helpers
from geoest.inference import HIERARCHY, Locator, crop_probabilities

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32

LOAD_AND_RUN = """
import json, sys
import numpy as np
import tensorflow as tf
assert not any(m.startswith("geoest") for m in sys.modules)
loaded = tf.saved_model.load(sys.argv[1])
images = tf.constant([open(p, "rb").read() for p in sys.argv[3:]])
out = loaded.signatures["serving_default"](image_bytes=images)
assert not any(m.startswith("geoest") for m in sys.modules)
np.savez(sys.argv[2], **{k: v.numpy().astype("S") if v.dtype == tf.string else v.numpy() for k, v in out.items()})
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from geoest.inference.modeldir import GeoModel
    from geoest.inference.serving import export_saved_model
    root = tmp_path_factory.mktemp("export")
    parts = helpers.partitionings(1500)
    geo_model = GeoModel(helpers.sharp_geo_model(parts, SIZE), parts, root / "best.keras")
    export_dir = export_saved_model(geo_model, root / "saved_model" / "1", top_k=3)
    paths = []
    for i, (h, w, fmt) in enumerate([(40, 70, "JPEG"), (80, 36, "JPEG"), (32, 32, "PNG"), (50, 64, "PNG")]):
        paths.append(root / f"img{i}.{fmt.lower()}")
        paths[-1].write_bytes(helpers.image_bytes(h, w, seed=i, fmt=fmt))
    return {"dir": export_dir, "model": geo_model, "paths": paths, "root": root}


def test_saved_model_equals_python_path(exported):
    from geoest.data.pipeline import image_dataset

    out_npz = exported["root"] / "served.npz"
    result = subprocess.run([sys.executable, "-c", LOAD_AND_RUN, str(exported["dir"]), str(out_npz),
                             *map(str, exported["paths"])], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = dict(np.load(out_npz))

    geo_model = exported["model"]
    (batch,) = list(image_dataset(exported["paths"], 8, image_size=SIZE).as_numpy_iterator())
    assert [p.decode() for p in batch["id"]] == [str(p) for p in exported["paths"]]
    probs = {k: v.numpy() for k, v in crop_probabilities(geo_model.model, batch["crops"]).items()}
    locator = Locator(geo_model.partitionings)
    python = locator.locate(probs, top_k_cells=3)
    assert set(python) == {"coarse", "middle", "fine", HIERARCHY}
    for name, located in python.items():
        np.testing.assert_array_equal(served[f"{name}_class"], located.classes)
        np.testing.assert_array_equal(served[f"{name}_top_classes"], located.top_classes)
        np.testing.assert_allclose(served[f"{name}_top_probabilities"], located.top_probs, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(served[f"{name}_lat"], located.lat_deg, atol=1e-9)
        np.testing.assert_allclose(served[f"{name}_lon"], located.lon_deg, atol=1e-9)
        tokens = locator.partitioning(name).tokens
        assert [[t.decode() for t in row] for row in served[f"{name}_top_cells"]] == \
            [[tokens[c] for c in row] for row in located.top_classes]
    np.testing.assert_allclose(served["lat"], python[HIERARCHY].lat_deg)
    np.testing.assert_allclose(served["lon"], python[HIERARCHY].lon_deg)
    # the images really differ in what the model says about them
    assert len({tuple(np.round(r, 6)) for r in served["hierarchy_top_probabilities"]}) == len(exported["paths"])


def test_export_refuses_a_used_folder(exported):
    from geoest.errors import InputError
    from geoest.inference.serving import export_saved_model

    with pytest.raises(InputError, match="not empty"):
        export_saved_model(exported["model"], exported["dir"])


def test_export_main_reports_a_missing_model_dir(tmp_path):
    result = subprocess.run([sys.executable, "-m", "geoest.export", f"--model_dir={tmp_path / 'none'}",
                             f"--export_dir={tmp_path / 'out'}"], capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    assert result.returncode != 0 and "none" in result.stderr and "Traceback" not in result.stderr
