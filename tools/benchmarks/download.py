"""Download throughput of python -m geoest.download against a loopback server, and the cost of turning
img2dataset's output into geoest records.

python tools/benchmarks/download.py [--num_photos=2000 --runs=3 --distributors=multiprocessing,ray,pyspark \
    --processes=N --threads=32 --photos_per_shard=250]

Serves --num_photos generated 640x480 JPEGs (Flickr's `_z` size, photo-like detail) from 127.0.0.1
and times, for each distributor that can run here (ray and
pyspark need their extras, pyspark a Java runtime), --runs whole downloads into fresh folders with
`geoest.data.download.download` (30 s time-out, one retry pass at once): img2dataset's fetch, decode, resize to a shorter side of 320 px and
encode, then geoest's conversion to records. Prints the median wall seconds, photos/s, and photos/s per
core (photos/s divided by the processes used), with os.cpu_count() and the load average.

The conversion is timed on its own on img2dataset parquet shards of the same photos: reading a shard
and wrapping each JPEG into a geoest record (no decoding), against what re-encoding would have cost
(PIL decode and JPEG encode of each resized photo), as CPU milliseconds per photo.
"""
import contextlib
import http.server
import importlib.util
import io
import os
import pathlib
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np
import pyarrow.parquet as pq
from absl import flags
from PIL import Image

from geoest import cli
from geoest.data import build, download
from geoest.data import meta_csv as meta_lib
from geoest.data.url_list import read_url_list

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_photos", 2000, "Photos served and downloaded per run.")
flags.DEFINE_integer("runs", 3, "Timed downloads per distributor (median reported).")
flags.DEFINE_list("distributors", ["multiprocessing", "ray", "pyspark"], "Distributors to time (those that "
                  "cannot run here are skipped and named).")
flags.DEFINE_integer("processes", None, "img2dataset processes; default os.cpu_count().")
flags.DEFINE_integer("threads", 16, "Download threads per process.")
flags.DEFINE_integer("photos_per_shard", 250, "URL-list rows per shard.")
flags.DEFINE_string("work_dir", None, "Scratch folder (default a temporary one, removed).")


def _photo(rng) -> bytes:
    """A 640x480 (or 480x640) JPEG with photo-like detail, as Flickr serves the `_z` size."""
    width, height = (640, 480) if rng.random() < 0.75 else (480, 640)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    noise = rng.normal(0, 10, (height, width, 1)).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


@contextlib.contextmanager
def _serve(photos: dict):
    """Serves {path: JPEG bytes} on 127.0.0.1 (404 otherwise) for the block; yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):   # noqa: N802 (http.server's name)
            body = photos.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            try:
                self.wfile.write(body or b"")
            except (BrokenPipeError, ConnectionResetError):   # the client timed out
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _inputs(work: pathlib.Path, base_url: str, paths):
    urls, meta = work / "urls.csv", work / "meta.csv"
    rng = np.random.default_rng(0)
    urls.write_text("IMG_ID,url\n" + "".join(f"{k}.jpg,{base_url}{p}\n" for k, p in enumerate(paths)))
    meta.write_text("IMG_ID,LAT,LON\n" + "".join(f"{k}.jpg,{rng.uniform(-60, 60):.5f},{rng.uniform(-170, 170):.5f}\n"
                                                 for k in range(len(paths))))
    return urls, meta


def _runnable(distributor: str) -> str | None:
    """Why `distributor` cannot run here, or None."""
    if distributor == "ray" and importlib.util.find_spec("ray") is None:
        return "ray is not installed"
    if distributor == "pyspark" and (importlib.util.find_spec("pyspark") is None or shutil.which("java") is None):
        return "pyspark or a Java runtime is missing"
    return None


def _conversion_cost(work: pathlib.Path, urls, meta_csv, processes: int):
    """(ms CPU per photo wrapping parquet JPEGs into records, ms CPU per photo a decode + encode would add)."""

    listed = read_url_list(urls, flickr_size=None)
    pass_dir, parquet = work / "convert" / "pass0", work / "convert" / "input.parquet"
    pass_dir.parent.mkdir(parents=True)
    download._write_input(parquet, listed.ids, listed.urls)                         # noqa: SLF001
    download._img2dataset(parquet, pass_dir, shorter_side=320, processes=processes,  # noqa: SLF001
                          threads=FLAGS.threads, distributor="multiprocessing",
                          photos_per_shard=FLAGS.photos_per_shard, timeout_s=10, spark_master=None,
                          spark_driver_memory="4g")
    meta = meta_lib.read_meta_csv(meta_csv)
    row_of = {image_id: i for i, image_id in enumerate(meta.ids)}
    shards = sorted(pass_dir.glob("*.parquet"))
    jpegs = [j for s in shards for j in pq.read_table(s, columns=["jpg"]).column("jpg").to_pylist() if j]
    wrap, reencode = [], []
    for run in range(FLAGS.runs):
        copies = work / "convert" / f"copy{run}"
        shutil.copytree(pass_dir, copies)
        start = time.process_time()
        for k, shard in enumerate(sorted(copies.glob("*.parquet"))):
            download._convert_shard(shard, copies / f"out-{k:05d}.tfrecord", copies / "log.jsonl",  # noqa: SLF001
                                    meta, row_of)
        wrap.append(1e3 * (time.process_time() - start) / len(jpegs))
        start = time.process_time()
        for data in jpegs:
            with Image.open(io.BytesIO(data)) as image:
                image.convert("RGB").save(io.BytesIO(), format="JPEG", quality=build.JPEG_QUALITY)
        reencode.append(1e3 * (time.process_time() - start) / len(jpegs))
    return statistics.median(wrap), statistics.median(reencode), len(jpegs)


def main(argv):
    del argv
    processes = FLAGS.processes or os.cpu_count() or 1
    work = pathlib.Path(FLAGS.work_dir or tempfile.mkdtemp(prefix="geoest_download_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    distinct = [_photo(rng) for _ in range(64)]
    paths = [f"/{1000 + k % 9}/{10_000_000 + k}_{k:08x}_z.jpg" for k in range(FLAGS.num_photos)]
    results = []
    try:
        with _serve({p: distinct[k % len(distinct)] for k, p in enumerate(paths)}) as base_url:
            urls, meta = _inputs(work, base_url, paths)
            for distributor in FLAGS.distributors:
                why = _runnable(distributor)
                if why:
                    print(f"  {distributor}: skipped ({why})")
                    continue
                walls = []
                for run in range(FLAGS.runs):
                    out = work / f"{distributor}-{run}"
                    start = time.perf_counter()
                    summary = download.download(urls, meta, out, processes=processes, threads=FLAGS.threads,
                                                distributor=distributor, photos_per_shard=FLAGS.photos_per_shard,
                                                timeout_s=30, retries=1, retry_wait_s=0, flickr_size=None)
                    walls.append(time.perf_counter() - start)
                    if summary.written != FLAGS.num_photos:    # time-outs on a loaded machine, counted
                        print(f"  {distributor} run {run}: {summary.report()}")
                    shutil.rmtree(out)
                results.append((distributor, statistics.median(walls), min(walls)))
            wrap_ms, reencode_ms, converted = _conversion_cost(work, urls, meta, processes)
    finally:
        if FLAGS.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"os.cpu_count() = {os.cpu_count()}; load average {os.getloadavg()[0]:.2f} (at the end); "
          f"{FLAGS.num_photos} photos of 640x480 to a 320 px shorter side; {processes} processes x {FLAGS.threads} "
          f"threads; median of {FLAGS.runs} runs (each from a fresh start: processes, JVM, Ray)")
    print(f"  {'distributor':16s} {'wall s':>8s} {'photos/s':>9s} {'per core':>9s}")
    for distributor, wall, _ in results:
        rate = FLAGS.num_photos / wall
        print(f"  {distributor:16s} {wall:8.1f} {rate:9.1f} {rate / processes:9.1f}")
    print(f"  conversion to geoest records ({converted} photos): {wrap_ms:.3f} ms CPU per photo; a decode + "
          f"re-encode of each would add {reencode_ms:.2f} ms CPU per photo")


if __name__ == "__main__":
    cli.run(main)
