"""The trainer's private-Keras workaround runs only on the Keras releases it was checked on."""
import pathlib
import re

import keras
import pytest

from geoest.errors import InputError
from geoest.training import trainer

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("version", ["3.14.0", "3.16.0", "4.0.0", "2.15.0"])
def test_an_unchecked_keras_is_refused_in_one_line(version):
    with pytest.raises(InputError, match=rf"keras {re.escape(version)} is outside .*pip install 'keras>=3\.15,<3\.16'"):
        trainer.check_keras_version(version)


def test_the_installed_keras_and_setup_py_agree_with_the_checked_range():
    trainer.check_keras_version(keras.__version__)    # the suite runs on a checked release
    (low_major, low_minor), (high_major, high_minor) = trainer.KERAS_CHECKED
    assert f'"keras>={low_major}.{low_minor},<{high_major}.{high_minor}"' in (REPO / "setup.py").read_text()


def test_training_stops_before_touching_the_model_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer.check_keras_version, "__defaults__", ("3.99.0",))
    with pytest.raises(InputError, match="keras 3.99.0 is outside"):
        trainer.train(str(tmp_path / "run"), partitionings=["none.csv"], inputs=None)
    assert not (tmp_path / "run").exists()
