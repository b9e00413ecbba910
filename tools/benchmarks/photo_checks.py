"""What checking a photo before reading it costs: the first-bytes and header check
(`geoest.data.photo_checks.photo_problem`, with --min_side) and the link check
(`geoest.photo_paths.link_leaves`), per file, against reading the file whole.

python tools/benchmarks/photo_checks.py [--photos=2000 --side=480 --runs=5]

Writes --photos JPEGs of --side x 4/3 --side px into a temporary folder (local disk, page cache
warm after the first pass), then times each check over all of them; printed: the median over
--runs of microseconds per photo, the load average and os.cpu_count().
"""
import io
import os
import pathlib
import statistics
import tempfile
import time

import numpy as np
from absl import flags
from PIL import Image

from geoest import cli
from geoest.data.photo_checks import photo_problem
from geoest.photo_paths import link_leaves

flags.DEFINE_integer("photos", 2000, "Photos to check per run.")
flags.DEFINE_integer("side", 480, "Their shorter side (px).")
flags.DEFINE_integer("runs", 5, "Runs to take the median of.")
FLAGS = flags.FLAGS


def _per_photo_us(check, paths) -> float:
    start = time.perf_counter()
    for path in paths:
        check(path)
    return 1e6 * (time.perf_counter() - start) / len(paths)


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k in range(FLAGS.photos):
            small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            out = io.BytesIO()
            Image.fromarray(small).resize((FLAGS.side * 4 // 3, FLAGS.side)).save(out, format="JPEG", quality=90)
            path = os.path.join(folder, f"{k // 100}", f"{k}.jpg")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(out.getvalue())
            paths.append(path)
        checks = {"first bytes": lambda p: photo_problem(p),
                  "first bytes + header (--min_side)": lambda p: photo_problem(p, min_side=56),
                  "link check (realpath)": lambda p: link_leaves(folder, p),
                  "read whole": lambda p: pathlib.Path(p).read_bytes()}
        for check in checks.values():     # warm the page cache
            _per_photo_us(check, paths)
        times = {name: statistics.median(_per_photo_us(check, paths) for _ in range(FLAGS.runs))
                 for name, check in checks.items()}
        size_kb = os.path.getsize(paths[0]) / 1024
    print(f"{FLAGS.photos} JPEGs of {FLAGS.side * 4 // 3}x{FLAGS.side} px (~{size_kb:.0f} KB), median of "
          f"{FLAGS.runs} runs, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for name, us in times.items():
        print(f"  {name:36s} {us:8.1f} us per photo")


if __name__ == "__main__":
    cli.run(main)
