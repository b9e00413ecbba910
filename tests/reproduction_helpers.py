"""Running `python -m geoest.reproduce` in a subprocess, for the recipe's and the run's tests."""
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def reproduce(*args, cwd=REPO, timeout=2400):
    return subprocess.run([sys.executable, "-m", "geoest.reproduce", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def printed_commands(text: str) -> list:
    """The commands of a printed sequence, continuation lines joined."""
    return [c for c in text.replace(" \\\n    ", " ").splitlines() if c.startswith("python ")]
