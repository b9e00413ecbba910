"""tools/create_partitioning.py on a meta CSV: the file, the log, clear errors."""
import subprocess
import sys

import numpy as np
import pytest

from geoest.geo import Partitioning

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "create_partitioning.py"


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)


def test_tool_writes_the_partitioning(tmp_path):
    rng = np.random.default_rng(0)
    lat, lon = rng.normal(48, 2, 3000), rng.normal(11, 2, 3000)
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,AUTHOR,LAT,LON\n" + "".join(
        f"{k}.jpg,me,{a!r},{b!r}\n" for k, (a, b) in enumerate(zip(lat.tolist(), lon.tolist()))))
    out = tmp_path / "cells.csv"
    run = _run(f"--meta_csv={meta}", "--tau_min=5", "--tau_max=200", f"--output={out}")
    assert run.returncode == 0, run.stderr
    assert Partitioning.from_csv(out) == Partitioning.build(lat, lon, tau_min=5, tau_max=200)
    assert "splitting" in run.stderr and "cells" in run.stdout


@pytest.mark.parametrize("content,message", [
    ("IMG_ID,LAT,LON\na,10,20\nb,95,20\n", "(line 3, IMG_ID 'b'): LAT is 95.0"),
    ("IMG_ID,LAT,LON\na,10,20\nb,,20\n", "(line 3, IMG_ID 'b'): LAT is empty"),
    ("IMG_ID,LAT,LNG\na,10,20\n", "no column 'LON'; the header has IMG_ID, LAT, LNG"),
    ("IMG_ID,LAT,LON\na,10,x\n", "meta.csv"),
    ("", "empty file"),
])
def test_tool_bad_input(tmp_path, content, message):
    meta = tmp_path / "meta.csv"
    meta.write_text(content)
    run = _run(f"--meta_csv={meta}", f"--output={tmp_path / 'cells.csv'}")
    assert run.returncode != 0
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "cells.csv").exists()


def test_tool_bad_thresholds(tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\na,10,20\n")
    run = _run(f"--meta_csv={meta}", "--tau_min=50", "--tau_max=50", f"--output={tmp_path / 'c.csv'}")
    assert run.returncode != 0 and "tau_min must be" in run.stderr
