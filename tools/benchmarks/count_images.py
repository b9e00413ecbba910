"""Counting the training images of an epoch: from the records alone against a decoding pass.

python tools/benchmarks/count_images.py [--num_images=3000 --runs=3 --batch_size=128 --work_dir=DIR]

On the records of tools/benchmarks/input_pipeline.py (the same generated MP-16-like JPEGs, reused
from --work_dir), times one pass of
  * count_only: `train_dataset(..., count_only=True)`, what the trainer runs before training:
                records read, parsed, labelled for three partitionings and filtered, no photo decoded,
  * decoded:    one pass of the training pipeline, summing its batch sizes (what counting cost
                before: a full decode, crop and resize of every photo),
checks that both give the same number and prints the median wall and CPU seconds of --runs passes
(after a warm-up pass), the load average and os.cpu_count(). The count's fixed cost (building and
tracing the pipeline, about a second) is separated from its cost per record by also counting the
records listed five times.
"""
import os
import pathlib
import statistics
import tempfile
import time

import numpy as np
from absl import flags

from geoest import cli
from geoest.geo import Partitioning

import input_pipeline   # tools/benchmarks/input_pipeline.py: its records and flags

FLAGS = flags.FLAGS


def _timed(fn, runs: int):
    """(result, median wall s, median CPU s of this process) over `runs` calls after a warm-up."""
    walls, cpus, result = [], [], None
    for run in range(runs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = fn()
        if run:
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu_start)
    return result, statistics.median(walls), statistics.median(cpus)


def main(argv):
    del argv
    import tensorflow as tf

    from geoest.data import pipeline

    work_dir = pathlib.Path(FLAGS.work_dir or tempfile.mkdtemp(prefix="geoest_bench_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    pattern = input_pipeline._make_shards(work_dir, FLAGS.num_images, FLAGS.num_shards)  # noqa: SLF001
    lat, lon = input_pipeline._points(50_000, np.random.default_rng(0))                 # noqa: SLF001
    partitionings = [Partitioning.build(lat, lon, tau_min=50, tau_max=t) for t in (5000, 2000, 1000)]
    options = dict(shuffle_buffer=1000, repeat=False)

    counted, count_wall, count_cpu = _timed(lambda: pipeline.train_dataset(
        pattern, partitionings, FLAGS.batch_size, count_only=True, **options), FLAGS.runs)
    files = sorted(tf.io.gfile.glob(pattern))
    counted5, count5_wall, count5_cpu = _timed(lambda: pipeline.train_dataset(
        files * 5, partitionings, FLAGS.batch_size, count_only=True, **options), FLAGS.runs)
    decoded, decode_wall, decode_cpu = _timed(lambda: sum(int(images.shape[0]) for images, _ in pipeline.train_dataset(
        pattern, partitionings, FLAGS.batch_size, **options)), FLAGS.runs)
    print(f"os.cpu_count() = {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}; {FLAGS.num_images} records, "
          f"median of {FLAGS.runs} runs")
    print(f"  {'':34s} {'images':>7s} {'wall s':>8s} {'CPU s':>8s}")
    print(f"  {'count_only (no photo decoded)':34s} {counted:7d} {count_wall:8.3f} {count_cpu:8.3f}")
    print(f"  {'decoded pass (training pipeline)':34s} {decoded:7d} {decode_wall:8.3f} {decode_cpu:8.3f}")
    print(f"  {'count_only, the records 5 times':34s} {counted5:7d} {count5_wall:8.3f} {count5_cpu:8.3f}")
    per_record = [1e3 * (b - a) / (counted5 - counted) for a, b in ((count_wall, count5_wall), (count_cpu, count5_cpu))]
    print(f"  same count: {counted == decoded and counted5 == 5 * counted}; per record: count_only "
          f"{per_record[0]:.3f} ms wall / {per_record[1]:.3f} ms CPU, decoded {1e3 * decode_wall / decoded:.3f} ms wall / "
          f"{1e3 * decode_cpu / decoded:.3f} ms CPU")


if __name__ == "__main__":
    flags.FLAGS.set_default("runs", 3)
    cli.run(main)
