"""Writes images + a meta CSV as sharded TFRecords (schema in `geoest.data.records`).

Worker processes read and shrink the photos (shorter side 320 px by default, re-encoded as
JPEG only when needed); the calling process writes shard after shard. Each shard is written
under a temporary name and renamed when complete, so an interrupted build resumes by skipping
the shards already there, after checking that the meta CSV's rows (a digest) and the build options
are those of the shards there; a build from other rows or options is refused (or, with
`overwrite`, started afresh), never mixed in. A file that is missing, empty, not a JPEG (a PNG,
say), truncated or corrupt is skipped, counted and reported with its IMG_ID; it never stops a
build. An IMG_ID that is absolute or climbs out of images_dir, or a symbolic link in images_dir to a
file outside it (unless `follow_links`), is skipped and named, never opened.

This module imports TensorFlow only when writing, so the worker processes stay light.
"""
import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import itertools
import json
import logging
import math
import multiprocessing
import os
import pathlib
import signal
import re
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from geoest import interrupt
from geoest.data.meta_csv import read_meta_csv
from geoest.errors import InputError
from geoest.files import digest, write_text, writing
from geoest.photo_paths import OUTSIDE_LINK, link_leaves

SHORTER_SIDE = 320
JPEG_QUALITY = 90
IMAGES_PER_SHARD = 4000      # ~100-150 MB of 320 px JPEGs
_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"

# Reasons a photo is skipped (keys of BuildSummary.skipped).
MISSING = "missing file"
EMPTY = "zero-byte file"
NOT_JPEG = "not a JPEG"
CORRUPT = "corrupt or truncated JPEG"


def prepare_image(path, shorter_side: int = SHORTER_SIDE, quality: int = JPEG_QUALITY):
    """Reads one photo and returns it as JPEG bytes whose shorter side is <= `shorter_side`.

    A JPEG already small enough, in RGB or greyscale, is kept byte for byte; anything else is
    decoded, resized (Lanczos) and re-encoded. The whole image is decoded either way, so a
    truncated or corrupt file is caught here rather than in a training epoch.

    Returns:
      (jpeg_bytes, None) on success, or (None, reason) with reason one of MISSING, EMPTY,
      NOT_JPEG, CORRUPT (followed by details).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4)             # the first bytes: a file that is no JPEG is never read whole
            if not head:
                return None, EMPTY
            if not head.startswith(_JPEG_START):
                kind = "PNG" if head == b"\x89PNG" else "unknown format"
                return None, f"{NOT_JPEG} ({kind})"
            data = head + f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None, MISSING
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            scale = shorter_side / min(width, height)
            keep = (scale >= 1.0 and image.mode in ("RGB", "L")
                    and data.endswith(_JPEG_END))
            if not keep:
                size = (max(1, round(width * min(scale, 1.0))),
                        max(1, round(height * min(scale, 1.0))))
                image.draft("RGB", size)     # JPEG DCT scaling: decode at >= size, faster
            image.load()                     # raises on truncated or corrupt data
            if keep:
                return data, None
            image = image.convert("RGB")
            if image.size != size:
                image = image.resize(size, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality)
            return out.getvalue(), None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return None, f"{CORRUPT} ({e})"


def prepare_task(task):
    """`prepare_image` for a worker pool: (row, path, shorter_side, links) -> (row, jpeg, reason,
    followed). `links` is (images_dir, follow_links), or None for an absolute IMG_ID; a path that
    leads out of images_dir through a link is refused (OUTSIDE_LINK) unless followed, and never opened."""
    row, path, shorter_side, links = task
    followed = links is not None and link_leaves(links[0], path)
    if followed and not links[1]:
        return row, None, OUTSIDE_LINK, False
    return (row,) + prepare_image(path, shorter_side) + (followed,)


def worker_pool(workers: int | None):
    """A process pool whose workers never inherit the caller's TensorFlow threads
    (forkserver where available, else spawn)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers or os.cpu_count() or 1, initializer=_ignore_signals)


def _ignore_signals():
    """Workers leave Ctrl-C (SIGINT, sent to the whole process group) to the parent, which stops the
    build whole and ends them (Pool.terminate: SIGTERM)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _next_result(results):
    """The next photo from the worker pool, or None once a signal has arrived (workers killed by a
    scheduler's SIGTERM never answer, so the wait is checked every half second)."""
    while True:
        try:
            return results.next(timeout=0.5)
        except multiprocessing.TimeoutError:
            if interrupt.requested():
                return None


def thread_map(fn, tasks, workers: int | None, window: int = 256):
    """`map(fn, tasks)` on a thread pool, in order, with at most `window` tasks in flight."""
    tasks = iter(tasks)
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        pending = collections.deque(pool.submit(fn, t) for t in itertools.islice(tasks, window))
        while pending:
            result = pending.popleft().result()
            for t in itertools.islice(tasks, 1):
                pending.append(pool.submit(fn, t))
            yield result


def reason_kind(reason: str) -> str:
    """The reason without its details: one of MISSING, EMPTY, NOT_JPEG, CORRUPT, or OUTSIDE_LINK."""
    return reason if reason == OUTSIDE_LINK else reason.split(" (")[0]


@dataclasses.dataclass
class BuildSummary:
    """What a build wrote and skipped, over all shards (earlier runs included).

    Attributes:
      written: examples written.
      skipped: {reason: [IMG_ID, ...]}.
      shards: shard paths, in order.
      resumed_shards: shards found complete from an earlier run.
      links_followed: photos read through a symbolic link out of images_dir (`follow_links`).
    """
    written: int = 0
    skipped: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(list))
    shards: list = dataclasses.field(default_factory=list)
    resumed_shards: int = 0
    links_followed: int = 0

    def num_skipped(self) -> int:
        return sum(len(ids) for ids in self.skipped.values())

    def report(self, max_ids: int = 10) -> str:
        lines = [f"wrote {self.written} examples in {len(self.shards)} shards "
                 f"({self.resumed_shards} complete from an earlier run); "
                 f"skipped {self.num_skipped()}"
                 + (f"; read {self.links_followed} through links out of images_dir" if self.links_followed else "")]
        for reason, ids in sorted(self.skipped.items()):
            shown = ", ".join(ids[:max_ids]) + (", ..." if len(ids) > max_ids else "")
            lines.append(f"  {len(ids)} skipped, {reason}: {shown}")
        return "\n".join(lines)


def shard_rows(num_rows: int, num_shards: int, seed: int = 0) -> list:
    """The meta-CSV row indices of each shard: a fixed pseudo-random spread over the shards."""
    order = np.random.default_rng(seed).permutation(num_rows)
    return np.array_split(order, num_shards)


def shard_paths(output_dir, prefix: str, num_shards: int) -> list:
    output_dir = pathlib.Path(output_dir)
    return [output_dir / f"{prefix}-{k:05d}-of-{num_shards:05d}.tfrecord"
            for k in range(num_shards)]


def meta_digest(meta) -> str:
    """sha256 of what a build writes from a meta CSV: its IMG_IDs, coordinates and scene probabilities."""
    parts = ["\n".join(meta.ids).encode("utf-8"), meta.lat_deg.tobytes(), meta.lon_deg.tobytes()]
    parts += [b"probs365", meta.probs365.tobytes()] if meta.probs365 is not None else []
    parts += [b"probs3", meta.probs3.tobytes()] if meta.probs3 is not None else []
    return digest(parts)


def check_build_options(options_path: pathlib.Path, options: dict, paths, overwrite: bool):
    """Writes the build's options, or checks that those of the shards there are the same.

    With other options (or none recorded beside existing shards), refuses, or with `overwrite`
    removes the shards and log of the earlier build.
    """
    log_path = options_path.with_name(options_path.name.replace("-build.json", "-build.jsonl"))
    earlier = [p for p in paths if p.exists()] + [p for p in (log_path,) if p.exists()]
    previous = json.loads(options_path.read_text()) if options_path.exists() else None
    if previous == options:
        return
    if (previous is not None or earlier) and not overwrite:
        changed = sorted(k for k in set(previous or {}) | set(options)
                         if (previous or {}).get(k) != options.get(k))
        raise InputError(f"{options_path.parent} holds shards built with other options or meta CSV rows (changed: {', '.join(changed)}; "
                         f"see {options_path.name}); pass --overwrite to rebuild them, or use another --output_dir")
    for path in earlier:
        path.unlink()
    write_text(options_path, json.dumps(options, indent=1))


def _write_shard(tmp_path, rows, outside, meta, results, bar, records):
    """Writes one shard's photos (`rows` of the meta CSV) to `tmp_path`; returns (written,
    {reason: [IMG_ID]}, links followed), or (None, None, None) when a signal arrived (`geoest.interrupt`)."""
    import tensorflow as tf

    written, skipped, followed = 0, collections.defaultdict(list), 0
    with tf.io.TFRecordWriter(str(tmp_path)) as writer:
        for row in rows:
            if interrupt.requested():
                return None, None, None
            if row in outside:                  # never opened
                logging.warning("skipped %s: %s", meta.ids[row], outside[row])
                skipped[outside[row]].append(meta.ids[row])
                continue
            result = _next_result(results)
            if result is None:
                return None, None, None
            i, jpeg, reason, link = result
            bar.update(1)
            if jpeg is None:
                logging.warning("skipped %s: %s", meta.ids[i], reason)
                skipped[reason_kind(reason)].append(meta.ids[i])
                continue
            followed += link
            writer.write(records.encode_example(
                jpeg, meta.ids[i], meta.lat_deg[i], meta.lon_deg[i],
                probs365=None if meta.probs365 is None else meta.probs365[i],
                probs3=None if meta.probs3 is None else meta.probs3[i],
                scene_labels=None if meta.scene_labels is None else meta.scene_labels[i]))
            written += 1
    return written, skipped, followed


def build_tfrecords(images_dir, meta_csv, output_dir, *, num_shards: int | None = None,
                    shorter_side: int = SHORTER_SIDE, workers: int | None = None,
                    prefix: str | None = None, seed: int = 0,
                    progress: bool = True, overwrite: bool = False,
                    allow_absolute_paths: bool = False, follow_links: bool = False) -> BuildSummary:
    """Writes the photos of `meta_csv` found under `images_dir` as TFRecord shards.

    Rows are spread over the shards in a fixed pseudo-random order (`seed`), so every shard
    mixes places and times. Re-running the same call skips the shards already written.

    Args:
      images_dir: folder the IMG_IDs of the meta CSV are relative to.
      meta_csv: IMG_ID,LAT,LON[,scene columns]; see `geoest.data.meta_csv`.
      output_dir: where `<prefix>-<k>-of-<n>.tfrecord`, `<prefix>-build.json` (the options)
        and `<prefix>-build.jsonl` (one line per finished shard: written and skipped) go.
      num_shards: default ceil(rows / 4000).
      shorter_side: photos are shrunk to this shorter side (px); smaller ones are kept.
      workers: processes reading photos; default os.cpu_count().
      prefix: shard name prefix; default the meta CSV's stem.
      seed: the row order over shards.
      progress: show a tqdm bar with images/s.
      overwrite: rebuild an output_dir holding shards of this prefix from other rows or options.
      allow_absolute_paths: read absolute IMG_IDs as they are (else skipped and named).
      follow_links: read photos through symbolic links in images_dir that lead outside it (else
        skipped and named, never opened); the summary counts those followed.

    Returns:
      BuildSummary over all shards, including those of earlier runs.

    Raises:
      InputError: for a bad meta CSV or images_dir, or an output_dir holding a build from other
        meta CSV rows or options (unless `overwrite`).
    """
    from geoest.data import records   # imports TensorFlow

    images_dir = pathlib.Path(images_dir)
    if not images_dir.is_dir():
        raise InputError(f"images_dir {images_dir} is not a folder")
    meta = read_meta_csv(meta_csv)
    if len(meta) == 0:
        raise InputError(f"{meta_csv}: no rows")
    num_shards = num_shards or math.ceil(len(meta) / IMAGES_PER_SHARD)
    if num_shards < 1:
        raise InputError(f"num_shards must be >= 1, got {num_shards}")
    prefix = prefix or pathlib.Path(meta_csv).stem
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = shard_paths(output_dir, prefix, num_shards)
    shard_name = re.compile(rf"{re.escape(prefix)}-\d{{5}}-of-\d{{5}}\.tfrecord(\.tmp)?")
    earlier_shards = [p for p in output_dir.iterdir() if shard_name.fullmatch(p.name)]
    check_build_options(output_dir / f"{prefix}-build.json", {
        "meta_csv_rows": len(meta), "meta_csv_digest": meta_digest(meta), "num_shards": num_shards,
        "shorter_side": shorter_side, "seed": seed, "images_dir": str(images_dir.resolve()),
        "allow_absolute_paths": allow_absolute_paths, **({"follow_links": True} if follow_links else {})},
        sorted(set(earlier_shards) | set(paths)), overwrite)

    rows_per_shard = shard_rows(len(meta), num_shards, seed)
    log_path = output_dir / f"{prefix}-build.jsonl"
    finished = {}
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:                        # a line cut short by a full disk
                continue
            finished[entry["shard"]] = entry          # the last entry for a shard wins
    todo = [k for k in range(num_shards) if not paths[k].exists()]
    summary = BuildSummary(shards=paths, resumed_shards=num_shards - len(todo))
    for k in set(range(num_shards)) - set(todo):
        entry = finished.get(paths[k].name, {"written": 0, "skipped": {}})
        summary.written += entry["written"]
        summary.links_followed += entry.get("links_followed", 0)
        for reason, ids in entry["skipped"].items():
            summary.skipped[reason].extend(ids)
    if summary.resumed_shards:
        logging.info("resuming: %d of %d shards already written in %s",
                     summary.resumed_shards, num_shards, output_dir)

    image_paths, outside = meta.image_paths(images_dir, allow_absolute_paths)
    links = (str(images_dir), follow_links)
    tasks = [(int(i), image_paths[i], shorter_side, None if os.path.isabs(meta.ids[i]) else links)
             for k in todo for i in rows_per_shard[k] if i not in outside]
    bar = tqdm(total=len(tasks), unit="img", disable=not progress, smoothing=0.05,
               desc=f"{prefix}: {len(todo)} shards")
    results = iter(())
    with worker_pool(workers) as pool, interrupt.deferred(), contextlib.closing(bar):
        if tasks:
            results = pool.imap(prepare_task, tasks)   # chunks of one: `_next_result` can wait with a timeout
        for k in todo:
            tmp_path = paths[k].with_name(paths[k].name + ".tmp")
            try:
                with writing(paths[k], f"TFRecord shard {k + 1} of {num_shards}"):
                    written, skipped, followed = _write_shard(tmp_path, rows_per_shard[k], outside, meta, results,
                                                              bar, records)
                    if written is None:             # stopped by a signal: the shard is dropped
                        tmp_path.unlink(missing_ok=True)
                        bar.close()
                        interrupt.stop_if_requested(f"{sum(p.exists() for p in paths)} of {num_shards} shards "
                                                    f"complete in {output_dir}")
                with writing(log_path, "the build log"):
                    with log_path.open("a") as log:
                        log.write(json.dumps({"shard": paths[k].name, "written": written, "skipped": skipped,
                                              "links_followed": followed, "time": time.time()}) + "\n")
            except BaseException:
                tmp_path.unlink(missing_ok=True)       # a shard is whole or absent
                raise
            os.replace(tmp_path, paths[k])          # complete: a resumed build skips it
            summary.written += written
            summary.links_followed += followed
            for reason, ids in skipped.items():
                summary.skipped[reason].extend(ids)
    bar.close()
    return summary
