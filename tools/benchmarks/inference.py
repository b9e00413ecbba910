"""Inference cost on this machine (§3.4 at the paper's scale).

    python tools/benchmarks/inference.py [--partitionings_dir=../shared/data/mp16_partitions] [--runs=3]

Measures, printing the median of --runs runs and os.cpu_count():
  1. ResNet-101 (v2) three-crop inference, images/s at batch 1 and 32 (224 px crops, heads for the
     three MP-16 partitionings: 3,298 + 7,202 + 12,893 classes), model call + softmax mean only;
  2. the hierarchy f* per image: the vectorised `Locator` (f* + top-k + Class2GPS) next to
     a per-cell Python loop over the 12,893 fine cells;
  3. the exported SavedModel's latency for one encoded JPEG (decode, crops, model, hierarchy,
     Class2GPS), batch 1.
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
from geoest.geo import read_partitionings
from geoest.inference import Locator, crop_probabilities
from geoest.inference.modeldir import GeoModel
from geoest.inference.serving import export_saved_model

flags.DEFINE_string("partitionings_dir", str(pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
                                             / "mp16_partitions"), "Folder with cells_50_{5000,2000,1000}.csv.")
flags.DEFINE_integer("runs", 3, "Timed runs per figure (after one warm-up).")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes for the three-crop inference.")
flags.DEFINE_bool("saved_model", True, "Also export and time the SavedModel.")
FLAGS = flags.FLAGS


def median_seconds(fn, runs: int) -> float:
    fn()   # warm-up (graph tracing, memory)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_loop_hierarchy(hierarchy, probs):
    """§3.4 written cell by cell: the product of each fine cell's ancestors' probabilities."""
    fine = np.empty((probs[0].shape[0], hierarchy.parents.shape[0]))
    for b in range(fine.shape[0]):
        for cell, parents in enumerate(hierarchy.parents.tolist()):
            p = 1.0
            for level, parent in enumerate(parents):
                p *= probs[level][b, parent]
            fine[b, cell] = p
    return fine.argmax(axis=1)


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from geoest.models import build_model

    print(f"os.cpu_count() = {os.cpu_count()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"median of {FLAGS.runs} runs")
    # The published MP-16 partitionings (3,298 / 7,202 / 12,893 cells): the sizes that set f*'s cost.
    parts = read_partitionings([f"cells_50_{t}.csv" for t in (5000, 2000, 1000)], FLAGS.partitionings_dir)
    print("partitionings:", ", ".join(f"{p.name} ({len(p)})" for p in parts))

    # 2. hierarchy per image
    locator = Locator(parts)
    rng = np.random.default_rng(0)
    batch = 32
    probs = {p.name: rng.dirichlet(np.ones(len(p)), size=batch).astype(np.float32) for p in parts}
    vectorised = median_seconds(lambda: locator.locate(probs, top_k_cells=5), FLAGS.runs) / batch
    probs_list = [probs[p.name] for p in locator.partitionings]
    f_star = median_seconds(lambda: locator.hierarchy.f_star(probs_list).argmax(axis=1), FLAGS.runs) / batch
    loop = median_seconds(lambda: python_loop_hierarchy(locator.hierarchy, [x[:2] for x in probs_list]),
                          FLAGS.runs) / 2
    assert (python_loop_hierarchy(locator.hierarchy, [x[:4] for x in probs_list])
            == locator.locate({k: v[:4] for k, v in probs.items()})["hierarchy"].classes).all()
    print(f"hierarchy f* (product + argmax), vectorised: {f_star * 1e3:.3f} ms/image; per-cell Python loop: "
          f"{loop * 1e3:.1f} ms/image ({loop / f_star:.0f}x slower); all outputs with top-5 cells and "
          f"Class2GPS (Locator.locate): {vectorised * 1e3:.3f} ms/image")

    if not FLAGS.batch_sizes and not FLAGS.saved_model:
        return
    # 1. three-crop ResNet-101 inference
    model = build_model(parts, backbone="resnet101v2", image_size=224)
    call = tf.function(lambda crops: crop_probabilities(model, crops), jit_compile=False)
    for b in map(int, FLAGS.batch_sizes):
        crops = tf.constant(rng.integers(0, 256, (b, 3, 224, 224, 3), dtype=np.uint8))
        seconds = median_seconds(lambda: [v.numpy() for v in call(crops).values()], FLAGS.runs)
        print(f"ResNet-101 three-crop inference, batch {b}: {b / seconds:.2f} images/s "
              f"({3 * b / seconds:.2f} crops/s, {seconds:.2f} s per batch)")

    # 3. SavedModel latency
    if FLAGS.saved_model:
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (320, 480, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            export_saved_model(GeoModel(model, parts, pathlib.Path(tmp)), pathlib.Path(tmp) / "saved")
            print(f"SavedModel export: {time.perf_counter() - start:.0f} s")
            serve = tf.saved_model.load(str(pathlib.Path(tmp) / "saved")).signatures["serving_default"]
            images = tf.constant([buffer.getvalue()])
            seconds = median_seconds(lambda: serve(image_bytes=images)["lat"].numpy(), FLAGS.runs)
            print(f"SavedModel latency, one 480x320 JPEG (decode, 3 crops, ResNet-101, f*, Class2GPS): "
                  f"{seconds * 1e3:.0f} ms")


if __name__ == "__main__":
    cli.run(main)
