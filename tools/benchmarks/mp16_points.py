"""The MP-16-shaped point set the partitioning, meta-CSV and W_R benchmarks share.

`points_csv(path)` makes the 4,658,503 IMG_ID,LAT,LON points of ../shared/bench/make_points.py at
`path` on first use (about 1.5 minutes) and returns the path; the benchmarks take it as --points_csv.
"""
import pathlib
import subprocess
import sys

from absl import flags

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
PARTITIONINGS = SHARED / "data" / "mp16_partitions"

flags.DEFINE_string("points_csv", "/tmp/mp16_points.csv", "IMG_ID,LAT,LON points (made if absent).")


def points_csv(path=None) -> pathlib.Path:
    """The point file at `path` (default --points_csv), made with make_points.py if absent."""
    points = pathlib.Path(path or flags.FLAGS.points_csv)
    if not points.exists():
        print(f"making {points} with make_points.py (about 1.5 minutes)")
        subprocess.run([sys.executable, str(SHARED / "bench" / "make_points.py"),
                        str(PARTITIONINGS / "cells_50_1000.csv"), str(points)], check=True)
    return points
