"""Benchmark of the geo core at MP-16 scale: create_partitioning.py runs and assign() throughput.

python tools/benchmarks/partitioning.py [--points_csv=/tmp/mp16_points.csv] [--runs=3]

The point set is the 4,658,503-point MP-16-shaped set of ../shared/bench/make_points.py
(made on first use if --points_csv does not exist). Prints the median of --runs runs: wall time
and peak resident memory of each `tools/create_partitioning.py` run (tau_min 50, tau_max 1000,
2000, 5000), then points/s of `Partitioning.assign` (numpy) and of `assign_tf` in a tf.data map.
"""
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags

import mp16_points
from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.geo import Partitioning

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FLAGS = flags.FLAGS
flags.DEFINE_integer("runs", 3, "Runs per figure; the median is printed.")
flags.DEFINE_list("tau_max", ["1000", "2000", "5000"], "tau_max values to partition with.")


def _timed_run(cmd):
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {status}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main(argv):
    del argv
    points = mp16_points.points_csv()
    print(f"machine: {os.cpu_count()} cores; points: {points}")
    out_dir = pathlib.Path(tempfile.mkdtemp())
    for tau_max in FLAGS.tau_max:
        cmd = [sys.executable, str(REPO / "tools" / "create_partitioning.py"),
               f"--meta_csv={points}", "--tau_min=50", f"--tau_max={tau_max}",
               f"--output={out_dir / f'cells_50_{tau_max}.csv'}"]
        runs = [_timed_run(cmd) for _ in range(FLAGS.runs)]
        cells = sum(1 for _ in open(out_dir / f"cells_50_{tau_max}.csv")) - 1
        print(f"create_partitioning tau_max={tau_max}: {cells} cells, "
              f"wall {statistics.median(r[0] for r in runs):.2f} s, "
              f"peak RSS {statistics.median(r[1] for r in runs):.0f} MiB (median of {FLAGS.runs})")

    import tensorflow as tf


    meta = read_meta_csv(points, scene=False, author=False)
    lat, lon = meta.lat_deg, meta.lon_deg
    p = Partitioning.from_csv(out_dir / f"cells_50_{FLAGS.tau_max[0]}.csv")
    times = []
    for _ in range(FLAGS.runs):
        start = time.perf_counter()
        p.assign(lat, lon)
        times.append(time.perf_counter() - start)
    print(f"assign (numpy): {len(lat) / statistics.median(times) / 1e6:.2f} M points/s")

    n = 1_000_000
    ds = (tf.data.Dataset.from_tensor_slices((lat[:n].astype(np.float32),
                                              lon[:n].astype(np.float32)))
          .batch(65536).map(p.assign_tf, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))
    times = []
    for _ in range(FLAGS.runs):
        start = time.perf_counter()
        for _ in ds:
            pass
        times.append(time.perf_counter() - start)
    print(f"assign_tf in tf.data (batches of 65536): {n / statistics.median(times) / 1e6:.2f} "
          "M points/s")
    per_example = (tf.data.Dataset.from_tensor_slices((lat[:100_000].astype(np.float32),
                                                       lon[:100_000].astype(np.float32)))
                   .map(p.assign_tf, num_parallel_calls=tf.data.AUTOTUNE))
    start = time.perf_counter()
    for _ in per_example:
        pass
    print(f"assign_tf in tf.data (one example per call): "
          f"{100_000 / (time.perf_counter() - start) / 1e3:.1f} k points/s")


if __name__ == "__main__":
    cli.run(main)
