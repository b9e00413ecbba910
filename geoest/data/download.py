"""Photos from URL lists (design.md, "Photos from URL lists"): img2dataset downloads, geoest records.

MP-16, YFCC-25600 and the test sets exist only as Flickr URL lists. `download` hands the list to
img2dataset (multiprocessing, Spark or Ray), which fetches each photo, shrinks it to a shorter side
of 320 px (never enlarging it) and writes one parquet file and one `_stats.json` per shard. geoest
then wraps each shard's JPEG bytes, as img2dataset encoded them, into geoest records with the
coordinates and scene columns of the meta CSV: the same features, keys, shard names and build
manifest (`<prefix>-build.json`, `<prefix>-build.jsonl`) as `geoest.data.build.build_tfrecords`, so
every pipeline reads them unchanged. No photo is decoded or encoded a second time.

What geoest adds to img2dataset:
  * Flickr URLs ask for the 640-px size (`_z`), never the original (`geoest.data.url_list`).
  * A JPEG that ends before its end marker is refused (`CheckedResizer`); OpenCV would fill the
    missing part with grey and img2dataset would keep it.
  * Resume: a shard counts only once img2dataset wrote its `_stats.json` (before that its parquet
    may be empty or cut); img2dataset's incremental mode skips those shards, and geoest converts
    each finished shard once (temporary name, then rename). A run's inputs are checked against
    those recorded in `<prefix>-build.json`; other rows or options are refused, never mixed in.
  * Throttling and time-outs (HTTP 429 / 503, `timed out`, connection errors) are retried in later
    passes after a back-off (`retry_wait_s`, doubling each pass): img2dataset's own `retries`
    re-ask at once and never retry inside a finished shard. img2dataset reports only the status
    line of a failure, so a Retry-After header cannot be read; the back-off stands for it.
  * Everything not written is counted by reason (`geoest.data.download_reasons`): `DIR/download.json` (counts, photos written) and
    `DIR/missing.csv` (IMG_ID, reason), including rows of the URL list without a meta row, meta rows
    without a URL, URLs that are not http(s) and repeated IMG_IDs.

img2dataset keeps its respect of opt-out headers (X-Robots-Tag noai, noimageai, noindex,
noimageindex) and its user agent names geoest.

This module is TensorFlow-free at import: img2dataset's worker processes unpickle `CheckedResizer`
from it. It reads img2dataset's private `main.Resizer` (checked on 1.47).
"""
import collections
import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import pathlib
import re
import shutil
import signal
import sys
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")   # albumentations asks the network on import

import importlib.util                                     # noqa: E402 (after the variable above)

import pyarrow as pa                                      # noqa: E402
import pyarrow.parquet as pq                              # noqa: E402
from img2dataset.resizer import Resizer                   # noqa: E402

from geoest.data import build                             # noqa: E402
from geoest.data.download_reasons import (DUPLICATE, NO_URL, NOT_IN_META, RETRIED, TRUNCATED_JPEG,  # noqa: E402
                                          UNFINISHED, reason_of)
from geoest.data.meta_csv import read_meta_csv           # noqa: E402
from geoest.data.url_list import FLICKR_HOSTS, FLICKR_SIZE, read_url_list  # noqa: E402
from geoest.errors import InputError                      # noqa: E402
from geoest.files import ENCODING, atomic_path, digest, write_text  # noqa: E402

# img2dataset/__init__.py binds the name `main` to the function: the module is taken from importlib.
img2dataset_main = importlib.import_module("img2dataset.main")
DISTRIBUTORS = ("multiprocessing", "pyspark", "ray")
PHOTOS_PER_SHARD = 10_000       # img2dataset's default; ~300 MB of 320 px JPEGs per parquet
USER_AGENT_TOKEN = "geoest"
_JPEG_START, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
_IMG2DATASET_DIR = "img2dataset"


class CheckedResizer(Resizer):
    """img2dataset's Resizer, refusing a JPEG cut before its end marker (OpenCV decodes the part
    there and fills the rest with grey). Returns img2dataset's tuple (img_str, width, height,
    original_width, original_height, error)."""

    def __call__(self, img_stream, blurring_bbox_list=None):
        img_stream.seek(0)
        data = img_stream.read()
        if data.startswith(_JPEG_START) and not data.rstrip(b"\x00\r\n ").endswith(_JPEG_END):
            return None, None, None, None, None, f"{TRUNCATED_JPEG} (no end marker, {len(data)} bytes)"
        img_stream.seek(0)
        return super().__call__(img_stream, blurring_bbox_list)


@dataclasses.dataclass
class DownloadSummary:
    """What a download wrote and why the rest is missing (earlier runs included).

    Attributes:
      written: photos written as records.
      missing: {reason: [IMG_ID, ...]}: meta rows and URL-list rows not written.
      counts: the figures of download.json.
      shards: the record shards, in order.
    """
    written: int = 0
    missing: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)
    shards: list = dataclasses.field(default_factory=list)

    def report(self, max_ids: int = 5) -> str:
        lines = [f"wrote {self.written} photos in {len(self.shards)} shards; "
                 f"{sum(map(len, self.missing.values()))} not written"]
        for reason, ids in sorted(self.missing.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(ids[:max_ids]) + (", ..." if len(ids) > max_ids else "")
            lines.append(f"  {len(ids)} {reason}: {shown}")
        return "\n".join(lines)


def _stats_done(folder: pathlib.Path) -> set:
    """Shard numbers img2dataset finished in `folder` (those with a `_stats.json`)."""
    return {int(p.name.split("_")[0]) for p in folder.glob("*_stats.json")} if folder.is_dir() else set()


@contextlib.contextmanager
def _spark(processes: int, master: str | None, driver_memory: str):
    """The Spark session img2dataset's pyspark distributor uses: the active one, else one on
    `master` (default local[processes]) whose workers run this Python."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("--distributor=pyspark needs pyspark and a Java runtime "
                         "(pip install 'geoest[spark]'; apt-get install openjdk-17-jre-headless)") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)   # else workers lack img2dataset
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise InputError("--distributor=pyspark needs a Java runtime (e.g. apt-get install openjdk-17-jre-headless)")
    spark = (SparkSession.builder.master(master or f"local[{processes}]").appName("geoest.download")
             .config("spark.driver.memory", driver_memory).getOrCreate())
    try:
        yield spark
    finally:
        spark.stop()


def _img2dataset(input_parquet: pathlib.Path, output: pathlib.Path, *, shorter_side: int, processes: int,
                 threads: int, distributor: str, photos_per_shard: int, timeout_s: float,
                 spark_master: str | None, spark_driver_memory: str) -> None:
    """One img2dataset run over `input_parquet` (columns url, IMG_ID) into `output` (incremental)."""
    settings = dict(url_list=str(input_parquet), output_folder=str(output), input_format="parquet",
                    url_col="url", save_additional_columns=["IMG_ID"], output_format="parquet",
                    image_size=shorter_side, resize_mode="keep_ratio", resize_only_if_bigger=True,
                    encode_format="jpg", encode_quality=build.JPEG_QUALITY, processes_count=processes,
                    thread_count=threads, number_sample_per_shard=photos_per_shard, timeout=timeout_s,
                    distributor=distributor, incremental_mode="incremental", extract_exif=False,
                    compute_hash=None, retries=0, user_agent_token=USER_AGENT_TOKEN, enable_wandb=False,
                    max_shard_retry=1)
    previous, sigint = img2dataset_main.Resizer, signal.getsignal(signal.SIGINT)
    img2dataset_main.Resizer = CheckedResizer          # download() builds its resizer by this name
    try:
        with _spark(processes, spark_master, spark_driver_memory) if distributor == "pyspark" \
                else contextlib.nullcontext():
            img2dataset_main.download(**settings)
    except SystemExit:     # img2dataset's SIGINT handler exits with status 0
        raise KeyboardInterrupt("interrupted; re-running the same command resumes") from None
    finally:
        img2dataset_main.Resizer = previous
        signal.signal(signal.SIGINT, sigint)


def _write_input(path: pathlib.Path, ids, urls) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(pa.table({"url": pa.array(urls, pa.string()), "IMG_ID": pa.array(ids, pa.string())}), tmp)


def _pass_results(folder: pathlib.Path, shards) -> dict:
    """{IMG_ID: error message or None (written)} of the finished `shards` of one pass."""
    results = {}
    for k in shards:
        table = pq.read_table(folder / f"{k:05d}.parquet", columns=["IMG_ID", "status", "error_message"])
        for image_id, status, error in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            results[image_id] = None if status == "success" else (error or status)
    return results


def _convert_shard(parquet: pathlib.Path, record_path: pathlib.Path, log_path: pathlib.Path, meta, row_of) -> int:
    """Wraps the JPEG bytes of one finished img2dataset shard into geoest records (no decoding).

    Writes `record_path` whole (temporary name, then rename) and logs the shard in `log_path`;
    then drops the photos from the parquet, keeping its IMG_ID, status and error columns.
    Returns the number of photos written.
    """
    from geoest.data import records   # imports TensorFlow
    import tensorflow as tf

    table = pq.read_table(parquet, columns=["IMG_ID", "status", "error_message", "jpg"])
    ids, status, jpgs = (table.column(c).to_pylist() for c in ("IMG_ID", "status", "jpg"))
    tmp_path = record_path.with_name(record_path.name + ".tmp")
    written, skipped = 0, collections.defaultdict(list)
    errors = table.column("error_message").to_pylist()
    try:
        with tf.io.TFRecordWriter(str(tmp_path)) as writer:
            for image_id, state, jpeg, error in zip(ids, status, jpgs, errors):
                if state != "success":
                    skipped[reason_of(error or state)].append(image_id)
                    continue
                i = row_of[image_id]
                writer.write(records.encode_example(
                    jpeg, image_id, meta.lat_deg[i], meta.lon_deg[i],
                    probs365=None if meta.probs365 is None else meta.probs365[i],
                    probs3=None if meta.probs3 is None else meta.probs3[i],
                    scene_labels=None if meta.scene_labels is None else meta.scene_labels[i]))
                written += 1
    except BaseException:
        tmp_path.unlink(missing_ok=True)     # a full disk, an interruption: nothing half-written stays
        raise
    with log_path.open("a", encoding=ENCODING) as log:
        log.write(json.dumps({"shard": record_path.name, "written": written, "skipped": skipped,
                              "time": time.time()}) + "\n")
    os.replace(tmp_path, record_path)
    _slim(parquet)
    return written


def _slim(parquet: pathlib.Path) -> None:
    """Keeps only the IMG_ID, status and error columns of a converted shard's parquet (whole or not at all)."""
    if "jpg" not in pq.read_schema(parquet).names:
        return
    tmp = parquet.with_name(parquet.stem + ".slim.tmp")
    pq.write_table(pq.read_table(parquet, columns=["IMG_ID", "status", "error_message"]), tmp)
    os.replace(tmp, parquet)


def _passes(ids, urls, work: pathlib.Path, output_dir: pathlib.Path, prefix: str, meta, row_of, *,
            retries: int, retry_wait_s: float, run: dict):
    """img2dataset's passes over the rows and their conversion to records: pass 0 over every row, pass p
    over the rows throttled, timed out or unreachable in pass p - 1 (after a back-off), up to `retries`
    (and every pass an earlier run made). A pass with unfinished shards ends the passes: the next one's
    rows follow from it whole.

    Returns:
      ({IMG_ID: error message of its last attempt, None when written, UNFINISHED}, record shard paths).
    """
    final, shards = {}, []
    attempt = 0
    while ids and (attempt <= retries or (work / f"pass{attempt}").exists()):
        folder, input_parquet = work / f"pass{attempt}", work / f"pass{attempt}.parquet"
        n = math.ceil(len(ids) / run["photos_per_shard"])
        names = [f"{prefix}-{'' if attempt == 0 else f'retry{attempt}-'}{k:05d}-of-{n:05d}.tfrecord"
                 for k in range(n)]
        if not input_parquet.exists():
            _write_input(input_parquet, ids, urls)
        if len(_stats_done(folder)) < n:
            if attempt:
                wait = retry_wait_s * 2 ** (attempt - 1)
                logging.info("retry pass %d: %d photos, after waiting %.1f s", attempt, len(ids), wait)
                time.sleep(wait)
            elif _stats_done(folder):
                logging.info("resuming: %d of %d shards already downloaded", len(_stats_done(folder)), n)
            _img2dataset(input_parquet, folder, **run)
        done = sorted(_stats_done(folder) & set(range(n)))
        for k in done:
            if not (output_dir / names[k]).exists():
                _convert_shard(folder / f"{k:05d}.parquet", output_dir / names[k], output_dir / f"{prefix}-build.jsonl",
                               meta, row_of)
            else:
                _slim(folder / f"{k:05d}.parquet")
        shards += [output_dir / names[k] for k in done]
        results = _pass_results(folder, done)
        final.update(results)
        unfinished = [i for i in ids if i not in results]
        if unfinished:
            final.update(dict.fromkeys(unfinished, UNFINISHED))
            logging.warning("%d of %d shards of pass %d unfinished; re-run to resume", n - len(done), n, attempt)
            break
        again = [j for j, i in enumerate(ids) if results[i] is not None and reason_of(results[i]) in RETRIED]
        ids, urls = [ids[j] for j in again], [urls[j] for j in again]
        attempt += 1
    return final, shards


def _check_distributor(distributor: str) -> None:
    if distributor not in DISTRIBUTORS:
        raise InputError(f"--distributor={distributor!r}: expected one of {', '.join(DISTRIBUTORS)}")
    if distributor == "ray" and importlib.util.find_spec("ray") is None:
        # img2dataset's ray distributor silently does nothing without ray.
        raise InputError("--distributor=ray needs ray (pip install 'geoest[ray]')")


def download(urls_csv, meta_csv, output_dir, *, id_column: str = "IMG_ID", url_column: str = "url",
             shorter_side: int = build.SHORTER_SIDE, processes: int | None = None, threads: int = 64,
             distributor: str = "multiprocessing", photos_per_shard: int = PHOTOS_PER_SHARD,
             timeout_s: float = 10.0, retries: int = 3, retry_wait_s: float = 60.0,
             flickr_size: str | None = FLICKR_SIZE, flickr_hosts: str = FLICKR_HOSTS, prefix: str | None = None, write_meta=None,
             overwrite: bool = False, spark_master: str | None = None,
             spark_driver_memory: str = "4g") -> DownloadSummary:
    """Downloads the photos of a URL list that have a meta row and writes them as geoest records.

    Re-running the same call resumes: finished shards are kept, the rest downloaded.

    Args:
      urls_csv: CSV with IMG_ID and URL columns (or headerless IMG_ID,URL rows).
      meta_csv: the meta CSV (IMG_ID,LAT,LON[,scene columns]; `geoest.data.meta_csv`); its rows
        give each record's coordinates and scene columns.
      output_dir: where `<prefix>-<k>-of-<n>.tfrecord` (and `<prefix>-retry<p>-...` for photos
        fetched in retry pass p), `<prefix>-build.json`, `<prefix>-build.jsonl`, `download.json`,
        `missing.csv` and img2dataset's working folder `img2dataset/` go.
      id_column, url_column: column names in `urls_csv`.
      shorter_side: photos are shrunk to this shorter side (px); smaller ones are kept as they are.
      processes: img2dataset processes (Spark: local cores); default os.cpu_count().
      threads: download threads per process.
      distributor: "multiprocessing", "pyspark" or "ray".
      photos_per_shard: URL-list rows per shard (the unit of resume).
      timeout_s: seconds per request.
      retries: later passes over throttled, timed-out and unreachable photos.
      retry_wait_s: wait before the first retry pass (s); doubled for each further pass.
      flickr_size: the Flickr size suffix to ask for (None: URLs as given).
      flickr_hosts: regex of the hosts whose URLs are Flickr photo URLs.
      prefix: record shard name prefix; default the meta CSV's stem.
      write_meta: if given, the meta CSV rows of the photos written are written there (a CSV).
      overwrite: start afresh in an output_dir holding a download of other rows or options.
      spark_master: with pyspark and no active session: the master URL (default local[processes]).
      spark_driver_memory: memory of a Spark driver geoest starts.

    Returns:
      DownloadSummary over the whole download.

    Raises:
      InputError: a bad URL list or meta CSV, an unknown distributor (or ray missing), an
        output_dir holding a download from other rows or options, a full disk.
    """
    _check_distributor(distributor)
    if shorter_side < 1 or photos_per_shard < 1 or retries < 0:
        raise InputError(f"shorter_side ({shorter_side}) and photos_per_shard ({photos_per_shard}) must be "
                         f">= 1 and retries ({retries}) >= 0")
    processes = processes or os.cpu_count() or 1
    url_list = read_url_list(urls_csv, id_column, url_column, flickr_size=flickr_size, flickr_hosts=flickr_hosts)
    meta = read_meta_csv(meta_csv)
    meta_ids = meta.ids
    row_of = {image_id: i for i, image_id in enumerate(meta_ids)}
    in_meta = [i for i, image_id in enumerate(url_list.ids) if image_id in row_of]
    ids = [url_list.ids[i] for i in in_meta]
    urls = [url_list.urls[i] for i in in_meta]
    missing = collections.defaultdict(list, {r: list(v) for r, v in url_list.skipped.items() if r != DUPLICATE})
    missing[NOT_IN_META] = [image_id for image_id in url_list.ids if image_id not in row_of]
    listed = set(url_list.ids) | {i for v in url_list.skipped.values() for i in v}
    missing[NO_URL] = [image_id for image_id in meta_ids if image_id not in listed]
    if not ids:
        raise InputError(f"{urls_csv}: none of its {url_list.rows} rows has a downloadable URL and a row in "
                         f"{meta_csv} (IMG_IDs must match)")

    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    prefix = prefix or pathlib.Path(meta_csv).stem
    num_shards = math.ceil(len(ids) / photos_per_shard)
    work = output_dir / _IMG2DATASET_DIR
    shard_name = re.compile(rf"{re.escape(prefix)}-(retry\d+-)?\d{{5}}-of-\d{{5}}\.tfrecord(\.tmp)?")
    earlier = sorted(p for p in output_dir.iterdir() if shard_name.fullmatch(p.name))
    options = {"urls_digest": digest(["\n".join(ids).encode(), b"\0", "\n".join(urls).encode()]),
               "urls_rows": len(ids), "meta_csv_rows": len(meta), "meta_csv_digest": build.meta_digest(meta),
               "shorter_side": shorter_side, "photos_per_shard": photos_per_shard, "num_shards": num_shards,
               "source": "img2dataset"}
    options_path = output_dir / f"{prefix}-build.json"
    if not options_path.exists() or json.loads(options_path.read_text(encoding=ENCODING)) != options:
        build.check_build_options(options_path, options, earlier, overwrite)   # refuses, or starts afresh
        if work.exists():
            shutil.rmtree(work)
    work.mkdir(exist_ok=True)

    run = dict(shorter_side=shorter_side, processes=processes, threads=threads, distributor=distributor,
               photos_per_shard=photos_per_shard, timeout_s=timeout_s, spark_master=spark_master,
               spark_driver_memory=spark_driver_memory)
    try:
        final, shards = _passes(ids, urls, work, output_dir, prefix, meta, row_of, retries=retries,
                                retry_wait_s=retry_wait_s, run=run)
    except Exception as err:  # noqa: BLE001 (TensorFlow's writer raises its own errors on a full disk)
        if getattr(err, "errno", None) == 28 or "No space left" in str(err):
            raise InputError(f"{output_dir}: no space left on the device ({err}); free some and re-run, which "
                             "resumes at the first unfinished shard") from None
        raise

    summary = DownloadSummary(shards=shards)
    for image_id, error in final.items():
        if error is None:
            summary.written += 1
        else:
            missing[UNFINISHED if error == UNFINISHED else reason_of(error)].append(image_id)
    summary.missing = {reason: v for reason, v in missing.items() if v}
    summary.counts = {
        "photos_written": summary.written, "complete": UNFINISHED not in summary.missing,
        "url_list_rows": url_list.rows, "duplicate_rows": len(url_list.skipped.get(DUPLICATE, [])),
        "meta_csv_rows": len(meta), "requested": len(ids),
        "missing": {reason: len(v) for reason, v in sorted(summary.missing.items())},
        "shards": [p.name for p in shards],
        "urls_csv": str(pathlib.Path(urls_csv).resolve()), "meta_csv": str(pathlib.Path(meta_csv).resolve()),
    }
    write_text(output_dir / "download.json", json.dumps(summary.counts, indent=1) + "\n")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["IMG_ID", "reason"])
    for reason, image_ids in sorted(summary.missing.items()):
        writer.writerows([image_id, reason] for image_id in image_ids)
    write_text(output_dir / "missing.csv", out.getvalue())
    if write_meta is not None:
        write_meta_rows(meta_csv, {i for i, e in final.items() if e is None}, write_meta)
    return summary


def write_meta_rows(meta_csv, image_ids: set, output, id_column: str = "IMG_ID") -> int:
    """Writes the rows of `meta_csv` whose IMG_ID is in `image_ids`, fields as they are (whole or
    not at all). Returns the number of rows written."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    kept = 0
    with open(meta_csv, newline="", encoding=ENCODING) as f:
        reader = csv.reader(f)
        header = next(reader)
        column = [name.strip().lstrip("\ufeff") for name in header].index(id_column)
        writer.writerow(header)
        for row in reader:
            if row and row[column].strip() in image_ids:
                writer.writerow(row)
                kept += 1
    write_text(output, out.getvalue())
    return kept
