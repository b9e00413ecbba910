"""Benchmark of the distance weights W_R (geoest.geo.distance_weights) at MP-16 scale.

python tools/benchmarks/within_weights.py [--points_csv=/tmp/mp16_points.csv] [--runs=3]
    [--partitionings=cells_50_1000,cells_50_2000,cells_50_5000] [--fraction=1.0]

The point set is the 4,658,503-point MP-16-shaped set of ../shared/bench/make_points.py (made on first
use if --points_csv does not exist). For each published partitioning of ../shared/data/mp16_partitions,
each run is one child process that reads the points and builds `WithinWeights` from them; printed
are the median over --runs of the build's wall and CPU time (reading the CSV excluded), the child's peak
resident memory and its resident memory once the points are read, the stored non-zeros and the
size of the saved file, with the core count and load average.
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

import mp16_points
from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.geo import Partitioning
from geoest.geo.distance_weights import WithinWeights

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FLAGS = flags.FLAGS
flags.DEFINE_integer("runs", 3, "Runs per partitioning; the median is printed.")
flags.DEFINE_list("partitionings", ["cells_50_1000", "cells_50_2000", "cells_50_5000"],
                  "Published partitionings (stems in ../shared/data/mp16_partitions).")
flags.DEFINE_float("fraction", 1.0, "Use only this leading fraction of the points.")
flags.DEFINE_string("child", None, "Internal: build once for this partitioning CSV and print JSON.")


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(partitioning_csv: str) -> None:
    meta = read_meta_csv(FLAGS.points_csv, scene=False, author=False)
    n = int(round(FLAGS.fraction * len(meta.lat_deg)))
    lat, lon = meta.lat_deg[:n], meta.lon_deg[:n]
    part = Partitioning.from_csv(partitioning_csv)
    rss_points = _rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    weights = WithinWeights.build(part, lat, lon)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    with tempfile.TemporaryDirectory() as tmp:
        size = weights.save(tmp).stat().st_size
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "points": n, "cells": len(part),
                      "rss_points_mib": rss_points,
                      "nnz": [int(m.nnz) for m in weights.near], "bins": len(weights.bin_class),
                      "file_mib": size / 2**20}))


def main(argv):
    del argv
    if FLAGS.child:
        _child(FLAGS.child)
        return
    points = mp16_points.points_csv()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; points: {points}")
    for name in FLAGS.partitionings:
        csv = SHARED / "data" / "mp16_partitions" / f"{name}.csv"
        runs = []
        for _ in range(FLAGS.runs):
            proc = subprocess.Popen([sys.executable, __file__, f"--child={csv}", f"--points_csv={points}",
                                     f"--fraction={FLAGS.fraction}"], stdout=subprocess.PIPE)
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            if status != 0:
                raise RuntimeError(f"the build for {csv} failed with status {status}")
            result = json.loads(out.decode().strip().splitlines()[-1])
            result["peak_mib"] = usage.ru_maxrss / 1024
            runs.append(result)
        med = {k: statistics.median(r[k] for r in runs)
               for k in ("seconds", "cpu_seconds", "peak_mib", "rss_points_mib", "file_mib")}
        print(f"{name}: {runs[0]['cells']} cells, {runs[0]['points']:,} points: build {med['seconds']:.1f} s wall, "
              f"{med['cpu_seconds']:.1f} s CPU, "
              f"peak RSS {med['peak_mib']:.0f} MiB (points read: {med['rss_points_mib']:.0f} MiB), "
              f"non-zeros per near radius {runs[0]['nnz']}, {runs[0]['bins']} far bins, "
              f"file {med['file_mib']:.1f} MiB (median of {FLAGS.runs}); load now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    cli.run(main)
