"""Converting the Places365 ResNet-152 Caffe release: wall time and peak memory of one conversion.

python tools/benchmarks/convert_places365.py --prototxt=deploy_resnet152_places365.prototxt \
    --caffemodel=resnet152_places365.caffemodel [--runs=3]

Each run converts in a fresh process (`geoest.scene.conversion.convert`: read the prototxt, the weights
through OpenCV, build and fill the Keras model, save the .keras file and its manifest) and reports
its wall seconds and its peak resident memory (ru_maxrss, which includes importing TensorFlow);
printed: the median over --runs, the load average and os.cpu_count().
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from absl import flags

from geoest import cli
from geoest.errors import InputError

flags.DEFINE_string("prototxt", None, "The network definition.", required=True)
flags.DEFINE_string("caffemodel", None, "Its weights (the release, or any caffemodel for it).", required=True)
flags.DEFINE_integer("runs", 3, "Conversions to take the median of.")
FLAGS = flags.FLAGS

_CHILD = """import json, resource, sys, time
start = time.perf_counter()
from geoest.scene import conversion
imported = time.perf_counter()
conversion.convert(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"convert_s": time.perf_counter() - imported, "total_s": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv):
    del argv
    results = []
    with tempfile.TemporaryDirectory(prefix="geoest_bench_") as work:
        for run in range(FLAGS.runs):
            output = pathlib.Path(work) / f"run{run}.keras"
            done = subprocess.run([sys.executable, "-c", _CHILD, FLAGS.prototxt, FLAGS.caffemodel, str(output)],
                                  capture_output=True, text=True, check=False)
            if done.returncode:
                raise InputError(f"conversion failed: {done.stderr.strip().splitlines()[-1]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            size_mib = output.stat().st_size / 2**20
            output.unlink()
    for key in ("convert_s", "total_s", "peak_rss_mib"):
        values = [r[key] for r in results]
        print(f"{key}: median {statistics.median(values):.1f} (runs: {', '.join(f'{v:.1f}' for v in values)})")
    print(f"caffemodel {os.path.getsize(FLAGS.caffemodel) / 2**20:.0f} MiB -> .keras {size_mib:.0f} MiB; "
          f"cpus {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    cli.run(main)
