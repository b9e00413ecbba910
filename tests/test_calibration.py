"""Temperature scaling: the fit recovers a known temperature; the file belongs to one model."""
import json

import numpy as np
import pytest

from geoest import cli
from geoest.errors import InputError
from geoest.inference import calibration


def _synthetic(temperature, n_images=4000, n_classes=30, crops=1, seed=0):
    """Labels drawn from softmax(logits / T): T is the temperature that calibrates the logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n_images, n_classes))
    probs = np.exp(calibration._log_softmax(logits / temperature))
    labels = (probs.cumsum(axis=1) > rng.uniform(size=(n_images, 1))).argmax(axis=1)
    if crops > 1:   # crops that agree: the mean of their softmax is the softmax of one
        logits = np.repeat(logits[:, None], crops, axis=1)
    return logits, labels


@pytest.mark.parametrize("temperature", [0.4, 1.0, 2.5, 6.0])
def test_known_temperature_is_recovered(temperature):
    logits, labels = _synthetic(temperature)
    assert calibration.fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.08)


def test_crops_and_unknown_labels():
    logits, labels = _synthetic(2.0, crops=3)
    labels[::7] = -1      # photos in no cell are left out of the fit
    assert calibration.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.08)


def test_temper_matches_softmax_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 9))
    probs = np.exp(calibration._log_softmax(logits))
    np.testing.assert_allclose(calibration.temper(probs, 2.0), np.exp(calibration._log_softmax(logits / 2.0)),
                               rtol=1e-9)
    np.testing.assert_allclose(calibration.temper_tf(probs, 2.0).numpy(), calibration.temper(probs, 2.0),
                               rtol=1e-5)


def test_calibration_file_of_another_model_is_refused(tmp_path):
    import keras

    from geoest.inference.modeldir import GeoModel
    from inference_helpers import partitionings, tiny_model

    parts = partitionings(600)
    model = tiny_model({p.name: len(p) for p in parts})
    path = tmp_path / "best.keras"
    model.save(path)
    geo = GeoModel(model, parts, path)
    assert calibration.load_calibration(geo) is None
    fitted = calibration.Calibration({p.name: 1.5 for p in parts}, calibration.model_fingerprint(path),
                                     {p.name: len(p) for p in parts})
    fitted.save(tmp_path)
    assert calibration.load_calibration(geo).temperatures == {p.name: 1.5 for p in parts}
    assert calibration.load_calibration(geo, False) is None   # --temperatures=none: uncalibrated
    assert cli.temperatures_file("none") is False and cli.temperatures_file(None) is None
    other = tmp_path / "other"
    other.mkdir()
    tiny_model({p.name: len(p) for p in parts}, seed=1).save(other / "best.keras")
    with pytest.raises(InputError, match="calibration.json was fitted for another model"):
        calibration.load_calibration(GeoModel(keras.saving.load_model(other / "best.keras"), parts,
                                              other / "best.keras"), tmp_path / "calibration.json")
    stored = json.loads((tmp_path / "calibration.json").read_text())
    stored["temperatures"][parts[0].name] = -1.0
    (tmp_path / "calibration.json").write_text(json.dumps(stored))
    with pytest.raises(InputError, match="must be positive"):
        calibration.load_calibration(geo)
