"""Benchmark of the meta CSV reader: `read_meta_csv` on MP-16-sized coordinates and the published meta files.

python tools/benchmarks/meta_csv.py [--points_csv=/tmp/mp16_points.csv] [--runs=3]

Each read runs in its own process (this script with --read), so its CPU time (user + system, all
threads) and peak resident memory are its own; the CPU time of a process that reads nothing
(starting Python, importing the reader and pyarrow, whose first conversion to numpy imports pandas)
is subtracted. Prints the median of --runs runs for: the
4,658,503 points of ../shared/bench/make_points.py read as a partitioning reads them (IMG_ID, LAT,
LON), the same file read in full with the IMG_IDs as Python strings, and the published Im2GPS and
Im2GPS3k meta CSVs in full (20 reads each).
"""
import os
import pathlib
import statistics
import subprocess
import sys
import time

import pyarrow as pa
from absl import flags

import mp16_points
from geoest import cli
from geoest.data.meta_csv import read_meta_csv

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
PUBLISHED = SHARED / "data" / "published" / "meta"
FLAGS = flags.FLAGS
flags.DEFINE_integer("runs", 3, "Runs per figure; the median is printed.")
flags.DEFINE_enum("read", None, ["nothing", "coordinates", "full", "im2gps", "im2gps3k"],
                  "Child mode: do this one read and exit.")

CASES = {
    "coordinates": "MP-16-shaped points, IMG_ID/LAT/LON (scene=False, author=False)",
    "full": "MP-16-shaped points, in full, IMG_IDs as str",
    "im2gps": "published im2gps_places365.csv (237 rows), in full, x20",
    "im2gps3k": "published im2gps3k_places365.csv (2,997 rows), in full, x20",
}


def _read(case: str) -> None:
    if case == "nothing":             # what the first read of a process imports
        pa.array([0.0]).to_numpy()
    elif case == "coordinates":
        read_meta_csv(FLAGS.points_csv, scene=False, author=False)
    elif case == "full":
        assert len(read_meta_csv(FLAGS.points_csv).ids)
    else:
        for _ in range(20):
            assert len(read_meta_csv(PUBLISHED / f"{case}_places365.csv").ids)


def _child(case: str):
    """CPU seconds (user + system), wall seconds and peak RSS (MiB) of one process doing one read."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, f"--read={case}", f"--points_csv={FLAGS.points_csv}"],
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"--read={case} failed with status {status}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - start, usage.ru_maxrss / 1024


def _median(case: str):
    runs = [_child(case) for _ in range(FLAGS.runs)]
    return tuple(statistics.median(r[k] for r in runs) for k in range(3))


def main(argv):
    del argv
    if FLAGS.read:
        _read(FLAGS.read)
        return
    mp16_points.points_csv()
    cpu0, wall0, rss0 = _median("nothing")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; start and import alone: "
          f"{cpu0:.2f} CPU-s, wall {wall0:.2f} s, {rss0:.0f} MiB")
    for case, name in CASES.items():
        if case.startswith("im2gps") and not PUBLISHED.exists():
            continue
        cpu, wall, rss = _median(case)
        print(f"{name}: {cpu - cpu0:.2f} CPU-s, wall {wall - wall0:.2f} s, peak RSS {rss:.0f} MiB "
              f"(median of {FLAGS.runs})")


if __name__ == "__main__":
    cli.run(main)
