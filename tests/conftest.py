"""Shared fixtures: paths to ../shared data (tests skip when absent), a clean gin state."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MP16_DIR = SHARED / "data" / "mp16_partitions"
PLACES365_DIR = SHARED / "data" / "places365"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _require(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared data is read in place, never copied)")
    return path


@pytest.fixture
def mp16_dir():
    return _require(MP16_DIR)


@pytest.fixture
def im2gps3k_meta_rows():
    """(header, rows) of the authors' Im2GPS3k meta CSV as bytes, each line's CRLF kept."""
    lines = _require(SHARED / "data" / "published" / "meta" / "im2gps3k_places365.csv").read_bytes()
    lines = lines.splitlines(keepends=True)
    return lines[0], lines[1:]


@pytest.fixture
def places365_dir():
    return _require(PLACES365_DIR)


@pytest.fixture
def make_points_script():
    return _require(SHARED / "bench" / "make_points.py")


@pytest.fixture(autouse=True)
def _clear_gin():
    try:
        import gin
    except ImportError:  # pragma: no cover
        yield
        return
    gin.clear_config()
    yield
    gin.clear_config()
