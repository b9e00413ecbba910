"""`pip install geoest` gives every user command: the package built from a fresh clone and installed
into a new virtual environment serves each command's --help from outside the clone, and its packaged
gin files train the smoke run."""
import importlib.util
import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

from clone_helpers import fresh_clone

REPO = pathlib.Path(__file__).resolve().parents[1]
# `python -m geoest.<command>` for every user command (the mains BUILD knows, and the demo).
_SPEC = importlib.util.spec_from_file_location("update_build", REPO / "tools" / "update_build.py")
_UPDATE_BUILD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_UPDATE_BUILD)
COMMANDS = (*_UPDATE_BUILD.MAINS, "demo")


def _run(argv, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in argv], cwd=cwd, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A new venv holding geoest as pip installs it from a wheel of a fresh clone. Its dependencies
    (TensorFlow and the rest) are this environment's, seen through a .pth line, so nothing is
    downloaded; the clone's own sources are on no path of it."""
    root = tmp_path_factory.mktemp("install")
    clone = fresh_clone(str(root / "clone"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", root / "wheels", clone], cwd=root)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (root / "wheels").glob("geoest-*.whl")
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = pathlib.Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             cwd=root).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel],
                cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return python, site, root / "elsewhere"


@pytest.mark.slow   # builds and installs the package
def test_the_installed_package_is_the_one_that_runs(installed):
    python, site, elsewhere = installed
    elsewhere.mkdir(exist_ok=True)
    found = _run([python, "-c", "import geoest, geoest.training.config as c; print(geoest.__file__); "
                  "print(sorted(p.name for p in c.GIN_SEARCH_PATH[2].glob('*.gin')))"], cwd=elsewhere)
    assert found.returncode == 0, found.stderr
    location, gin_files = found.stdout.splitlines()
    assert pathlib.Path(location).is_relative_to(site) and not pathlib.Path(location).is_relative_to(REPO)
    assert {"base_M.gin", "smoke.gin", "isn_urban.gin", "demo.gin"} <= set(eval(gin_files))  # noqa: S307


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_user_command_answers_help_after_pip_install(installed, command):
    python, site, elsewhere = installed
    elsewhere.mkdir(exist_ok=True)
    done = _run([python, "-m", f"geoest.{command}", "--help"], cwd=elsewhere)
    # absl prints the usage and exits with status 1; its flags are listed under the installed file's path
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr[-3000:]
    main = site / "geoest" / ("demo/__main__.py" if command == "demo" else f"{command}.py")
    assert f"\n{main}:\n  --" in done.stdout, done.stdout[-2000:]


@pytest.mark.slow
def test_the_smoke_run_trains_from_the_installed_gin_files(installed, tmp_path):
    python, _, elsewhere = installed
    elsewhere.mkdir(exist_ok=True)
    done = _run([python, "-m", "geoest.train", "--gin_file=base_M.gin", "--gin_file=smoke.gin",
                 f"--model_dir={tmp_path / 'smoke'}"], cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "smoke" / "best.keras").is_file()
