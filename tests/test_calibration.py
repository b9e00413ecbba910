"""The calibration file belongs to one model: another model's, or bad temperatures, are refused."""
import json

import pytest

from geoest import cli
from geoest.errors import InputError
from geoest.inference import calibration


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
