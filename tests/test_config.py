"""geoest/training/config.py: gin's search path and macro check run only on the gin-config releases
whose private state they read."""
import importlib.metadata
import pathlib
import re

import gin
import pytest

from geoest.errors import InputError
from geoest.training import config

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("version", ["0.4.0", "0.6.0", "1.0.0", "0.1.1.2"])
def test_an_unchecked_gin_is_refused_in_one_line(version):
    with pytest.raises(InputError, match=rf"gin-config {re.escape(version)} is outside .*"
                                         rf"pip install 'gin-config>=0\.5,<0\.6'$"):
        config.check_gin_version(version)


def test_the_installed_gin_and_setup_py_agree_with_the_checked_range():
    config.check_gin_version(importlib.metadata.version("gin-config"))   # the suite runs on a checked release
    (low_major, low_minor), (high_major, high_minor) = config.GIN_CHECKED
    assert f'"gin-config>={low_major}.{low_minor},<{high_major}.{high_minor}"' in (REPO / "setup.py").read_text()
    # the private state the checks read is where they read it
    assert isinstance(gin.config._LOCATION_PREFIXES, list) and isinstance(gin.config._CONFIG, dict)  # noqa: SLF001


def test_parsing_stops_on_an_unchecked_gin(monkeypatch):
    monkeypatch.setattr(config.check_gin_version, "__defaults__", ("0.9.0",))
    with pytest.raises(InputError, match="gin-config 0.9.0 is outside"):
        config.parse_gin(["smoke.gin"])
