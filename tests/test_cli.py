"""geoest/cli.py: flag strings become data, and every main ends bad input the same way: one line
`error: ...` on stderr and exit status 2, whether absl refuses a flag or the work refuses a value."""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from geoest import cli
from geoest.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("update_build", REPO / "tools" / "update_build.py")
_UPDATE_BUILD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_UPDATE_BUILD)
MAINS = [*(REPO / "geoest" / f"{m}.py" for m in _UPDATE_BUILD.MAINS),     # the mains BUILD knows
         REPO / "geoest" / "demo" / "__main__.py",
         *(p for p in sorted((REPO / "tools").glob("*.py")) if p.name != "update_build.py"),
         *(p for p in sorted((REPO / "tools" / "benchmarks").glob("*.py"))   # a shared helper is no main
           if '__name__ == "__main__"' in p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("spec, expected", [
    ("runs/base_M", ("base_M", "runs/base_M")),
    ("runs/base_M/", ("base_M", "runs/base_M/")),
    ("mtn=runs/mtn_s16_ft", ("mtn", "runs/mtn_s16_ft")),
    ("urban=/a/b=c", ("urban", "/a/b=c")),
])
def test_parse_named(spec, expected):
    assert cli.parse_named(spec) == expected


@pytest.mark.parametrize("spec", ["=runs/x", "name=", "="])
def test_parse_named_refuses_a_missing_half(spec):
    with pytest.raises(InputError, match="--model_dir.*expected NAME=DIR or DIR"):
        cli.parse_named(spec, "--model_dir")


def test_named_dirs_keep_the_order_and_refuse_a_name_twice():
    dirs = cli.named_dirs(["b=x/one", "x/a", "c=two"], "--model_dir")
    assert list(dirs.items()) == [("b", "x/one"), ("a", "x/a"), ("c", "two")]
    with pytest.raises(InputError, match="--model_dir: the name 'base_M' is given twice"):
        cli.named_dirs(["runs/base_M", "other/base_M"], "--model_dir")


def test_a_model_dir_may_name_its_own_centers():
    # Table 6: base-vgg(L, m) and base-vgg_c(L, m) are one model, two rows of one evaluate run.
    dirs, centers = cli.model_dirs_and_centers(["vgg=m/base_vgg", "vgg_c=m/base_vgg:geometric", "x/a:mean",
                                                "c:/models/b"])
    assert list(dirs.items()) == [("vgg", "m/base_vgg"), ("vgg_c", "m/base_vgg"), ("a", "x/a"), ("b", "c:/models/b")]
    assert centers == {"vgg_c": "geometric", "a": "mean"}
    with pytest.raises(InputError, match="the name 'vgg' is given twice"):
        cli.model_dirs_and_centers(["vgg=m/one", "vgg=m/one:geometric"])


def _main(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "geoest.export", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.mark.parametrize("args, words", [
    (["--model_dir=m", "--export_dir=e", "--centers=middle"], ["--centers", "middle", "geometric"]),   # enum
    (["--model_dir=m", "--export_dir=e", "--top_k=five"], ["--top_k", "five"]),                       # type
    (["--export_dir=e"], ["--model_dir"]),                                                          # required
    (["--model_dir=m", "--export_dir=e", "--cneters=mean"], ["cneters"]),                           # unknown
    (["--model_dir=m", "--export_dir=e", "stray.jpg"], ["stray.jpg"]),                              # no flag
    (["--model_dir=m", "--export_dir=e", "--region_mass=0.5,1.5"], ["--region_mass", "1.5"]),       # InputError
])
def test_bad_flags_are_one_line_and_exit_status_2(args, words, tmp_path):
    result = _main(*(a.replace("=m", f"={tmp_path / 'm'}").replace("=e", f"={tmp_path / 'e'}") for a in args))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert not (tmp_path / "e").exists()


def test_every_main_goes_through_cli_run():
    for path in MAINS:
        source = path.read_text(encoding="utf-8")
        assert source.rstrip().endswith("    cli.run(main)") and 'if __name__ == "__main__":' in source, path
        for ad_hoc in ("app.run(", "sys.exit(", "exit(1)", "SystemExit"):
            assert ad_hoc not in source, f"{path}: {ad_hoc}"


@pytest.mark.parametrize("check,value,message", [
    (cli.region_mass_flag, ["0.0"], "--region_mass='0.0': a region's probability mass must lie strictly between 0 and 1"),
    (cli.region_mass_flag, [1.0], "--region_mass=1.0: a region's probability mass must lie strictly between 0 and 1"),
    (cli.region_mass_flag, ["x"], "--region_mass='x': expected numbers strictly between 0 and 1"),
    (cli.region_mass_flag, [], "--region_mass: give at least one probability mass, e.g. 0.5,0.9"),
    (cli.min_confidence_flag, -0.1, "--min_confidence=-0.1: expected a probability in [0, 1]"),
    (cli.min_confidence_flag, 1.5, "--min_confidence=1.5: expected a probability in [0, 1]"),
    (cli.max_resolution_flag, 0, "--max_resolution_km=0: expected a distance in km above 0 and at most 12,173 "
                                 "(an S2 face, the coarsest area there is)"),
    (cli.max_resolution_flag, -3.0, "--max_resolution_km=-3.0: expected a distance in km above 0 and at most 12,173 "
                                    "(an S2 face, the coarsest area there is)"),
])
def test_bad_confidence_flags_name_the_flag(check, value, message):
    """The geo core names p, q and K; the mains name the flag they took the value from."""
    with pytest.raises(InputError) as raised:
        check(value)
    assert str(raised.value) == message


def test_confidence_settings_are_the_checked_flags():
    class Values:
        region_mass, min_confidence, max_resolution_km, centers = ["0.5", "0.9"], 0.3, None, "mean"

    assert cli.confidence_settings(Values) == dict(masses=(0.5, 0.9), min_confidence=0.3, max_resolution_km=None,
                                                  centers="mean")
    Values.max_resolution_km = 200.0
    assert cli.confidence_settings(Values)["max_resolution_km"] == 200.0
