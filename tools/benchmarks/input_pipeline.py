"""Input pipeline throughput: §4 training and §3.4 evaluation pipelines next to plain decoding.

python tools/benchmarks/input_pipeline.py [--num_images=3000 --runs=5 --batch_size=128 \
    --work_dir=DIR --partitioning_csvs=a.csv,b.csv,c.csv]

Generates MP-16-like JPEGs (shorter side 320 px, landscape and portrait, 3:4 to 9:16) at
clustered coordinates, writes them as TFRecord shards, then times one pass over them with
  * plain decode_jpeg: TFRecordDataset -> parse -> tf.io.decode_jpeg, whole photos (the decoder),
  * decode-crop-resize ceiling: parse, the §4 crop window, tf.io.decode_and_crop_jpeg of that
            window only, resize to 224x224, the training pipeline's output dtype, batch: the least
            work that yields what a training step takes, so the ceiling of the training pipeline,
  * train:  geoest.data.pipeline.train_dataset (shuffle, labels for three partitionings from
            lat/lon, crop window, flip, resize),
  * eval:   geoest.data.pipeline.eval_dataset (full decode, resize, three crops).
For each it prints the median over --runs windows of --num_images images (one iterator over the
repeated data, after one warm-up window) of images per wall-clock second and per CPU-second of
this process (all its threads), the mean number of busy cores (CPU-seconds / wall-seconds), and
the bytes per image handed to the model. CPU-seconds
are the figure to compare: wall-clock rates swing with other jobs on the machine, CPU-seconds
per image hardly do, and they are what scales to a host with more cores.
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
from tqdm import tqdm

from geoest import cli
from geoest.geo import Partitioning, read_partitionings

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 3000, "JPEGs to generate.")
flags.DEFINE_integer("runs", 5, "Timed windows of num_images images per pipeline (median reported).")
flags.DEFINE_integer("batch_size", 128, "Batch size (§4).")
flags.DEFINE_integer("num_shards", 8, "TFRecord shards.")
flags.DEFINE_string("work_dir", None, "Where to put the generated shards (reused if there).")
flags.DEFINE_list("partitioning_csvs", [], "Partitionings for the labels; default three built "
                  "from the generated coordinates.")


def _photo(rng) -> bytes:
    """A 320 px shorter-side JPEG with photo-like detail (smooth shapes plus fine noise)."""
    longer = int(rng.choice([427, 480, 569]))
    height, width = (320, longer) if rng.random() < 0.75 else (longer, 320)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC),
                      np.int16)
    noise = rng.normal(0, 10, (height, width, 1)).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(
        out, format="JPEG", quality=90)
    return out.getvalue()


def _points(n, rng):
    centres = rng.uniform([-50, -170], [65, 170], (40, 2))
    which = rng.integers(0, len(centres), n)
    lat = np.clip(centres[which, 0] + rng.normal(0, 2, n), -89, 89)
    lon = np.clip(centres[which, 1] + rng.normal(0, 2, n), -179, 179)
    return lat, lon


def _make_shards(work_dir: pathlib.Path, num_images: int, num_shards: int):
    import tensorflow as tf

    from geoest.data import records

    pattern = str(work_dir / "bench-*.tfrecord")
    if len(tf.io.gfile.glob(pattern)) == num_shards:
        return pattern
    rng = np.random.default_rng(0)
    lat, lon = _points(num_images, rng)
    writers = [tf.io.TFRecordWriter(str(work_dir / f"bench-{k:03d}.tfrecord"))
               for k in range(num_shards)]
    sizes = []
    for i in tqdm(range(num_images), desc="generating JPEGs", unit="img"):
        jpeg = _photo(rng)
        sizes.append(len(jpeg))
        writers[i % num_shards].write(records.encode_example(
            jpeg, f"{i}.jpg", lat[i], lon[i], probs3=rng.dirichlet(np.ones(3))))
    for writer in writers:
        writer.close()
    print(f"generated {num_images} JPEGs, median {statistics.median(sizes) / 1024:.0f} KiB")
    return pattern


def _images_per_second(dataset, count_fn, runs: int, images_per_run: int):
    """Medians over `runs` windows of `images_per_run` images (after a warm-up window) of images
    per wall-clock second, images per CPU-second of this process, and busy cores (CPU-seconds per
    wall-second). One iterator over the repeated dataset, as a training run reads it: the
    one-time cost of starting it (graph optimisation, buffers) is left out."""
    iterator = iter(dataset.repeat())
    rates, cpu_rates, busy = [], [], []
    for run in range(runs + 1):
        start, cpu_start, n = time.perf_counter(), time.process_time(), 0
        while n < images_per_run:
            n += count_fn(next(iterator))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if run:                        # the first window warms up (autotuning, file cache)
            rates.append(n / wall)
            cpu_rates.append(n / cpu)
            busy.append(cpu / wall)
    return statistics.median(rates), statistics.median(cpu_rates), statistics.median(busy)


def _bytes_per_image(spec) -> int:
    """Bytes of one image (all its crops) in a batch of `spec` (a tf.TensorSpec [B, ...])."""
    return int(np.prod(spec.shape[1:])) * spec.dtype.size


def main(argv):
    del argv
    import tensorflow as tf

    from geoest.data import pipeline
    from geoest.data.crops import sample_crop_window

    work_dir = pathlib.Path(FLAGS.work_dir or tempfile.mkdtemp(prefix="geoest_bench_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    pattern = _make_shards(work_dir, FLAGS.num_images, FLAGS.num_shards)
    files = sorted(tf.io.gfile.glob(pattern))
    if FLAGS.partitioning_csvs:
        partitionings = read_partitionings(FLAGS.partitioning_csvs)
    else:
        lat, lon = _points(50_000, np.random.default_rng(0))
        partitionings = [Partitioning.build(lat, lon, tau_min=50, tau_max=tau_max)
                         for tau_max in (5000, 2000, 1000)]

    def train():
        return pipeline.train_dataset(pattern, partitionings, FLAGS.batch_size,
                                      shuffle_buffer=1000, repeat=True)

    def evaluation():
        return pipeline.eval_dataset(pattern, FLAGS.batch_size, partitionings=partitionings)

    train_spec = train().element_spec[0]
    eval_spec = evaluation().element_spec["crops"]

    def records():
        return tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset, cycle_length=len(files),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)

    def encoded(serialized):
        return tf.io.parse_single_example(
            serialized, {"image/encoded": tf.io.FixedLenFeature([], tf.string)})["image/encoded"]

    def plain():
        ds = records().map(lambda s: tf.shape(tf.io.decode_jpeg(encoded(s), channels=3)),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        return ds.batch(FLAGS.batch_size).prefetch(tf.data.AUTOTUNE)

    def ceiling():
        def decode(position, serialized):
            jpeg = encoded(serialized)
            window = sample_crop_window(tf.io.extract_jpeg_shape(jpeg),
                                        tf.stack([tf.constant(0, tf.int64), position]))
            image = tf.image.resize(tf.io.decode_and_crop_jpeg(jpeg, window, channels=3), [224, 224])
            if train_spec.dtype == tf.uint8:
                return tf.cast(image + 0.5, tf.uint8)
            return image / 127.5 - 1.0
        ds = records().enumerate().map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        return ds.batch(FLAGS.batch_size, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=False).prefetch(tf.data.AUTOTUNE)

    def rate(make_dataset, count_fn):
        return _images_per_second(make_dataset(), count_fn, FLAGS.runs, FLAGS.num_images)

    results = {
        "plain decode_jpeg": rate(plain, lambda b: int(b.shape[0])),
        "decode-crop-resize ceiling": rate(ceiling, lambda b: int(b.shape[0])),
        "train pipeline": rate(train, lambda b: int(b[0].shape[0])),
        "eval pipeline (3 crops)": rate(evaluation, lambda b: int(b["crops"].shape[0])),
    }
    sizes = {"decode-crop-resize ceiling": _bytes_per_image(train_spec),
             "train pipeline": _bytes_per_image(train_spec),
             "eval pipeline (3 crops)": _bytes_per_image(eval_spec)}
    print(f"os.cpu_count() = {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}; "
          f"{FLAGS.num_images} images, median of {FLAGS.runs} runs, batch {FLAGS.batch_size}")
    print(f"  {'':28s} {'images/s':>9s} {'images/CPU-s':>13s} {'busy cores':>11s} {'bytes/image':>12s}")
    for name, (rate, cpu_rate, busy) in results.items():
        size = f"{sizes[name]:,}" if name in sizes else ""
        print(f"  {name:28s} {rate:9.1f} {cpu_rate:13.1f} {busy:11.2f} {size:>12s}")
    train_rate, ceiling_rate = results["train pipeline"], results["decode-crop-resize ceiling"]
    print(f"  train / decode-crop-resize ceiling = {train_rate[1] / ceiling_rate[1]:.0%} (CPU), "
          f"{train_rate[0] / ceiling_rate[0]:.0%} (wall)")


if __name__ == "__main__":
    cli.run(main)
