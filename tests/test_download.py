"""python -m geoest.download against a loopback Flickr-like server: records, counts, resume, bad input."""
import collections
import csv
import importlib.util
import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from download_helpers import EXPECTED, PhotoServer, flickr_rows
from geoest.data import download, pipeline, records
from geoest.data.download_reasons import NO_URL, NOT_HTTP, NOT_IN_META
from geoest.data.url_list import read_url_list
from geoest.errors import InputError
from geoest.geo import Partitioning

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_META = REPO.parent / "shared" / "data" / "published" / "meta" / "im2gps3k_places365.csv"
LOOPBACK = r"127\.0\.0\.1"
CASES = {"photo": 200, "throttled": 3, "redirect": 3, "slow": 2, "404": 4, "410": 3, "stall": 1, "truncated": 2,
         "html": 2, "noise": 1, "loop": 1, "short": 1, "optout": 2}


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO), NO_ALBUMENTATIONS_UPDATE="1", TF_CPP_MIN_LOG_LEVEL="2")


def _command(urls, meta, out, *extra):
    return [sys.executable, "-m", "geoest.download", f"--urls_csv={urls}", f"--meta_csv={meta}",
            f"--output_dir={out}", "--processes=1", "--threads=16", "--timeout_s=5", "--retries=1",
            "--retry_wait_s=0.5", f"--flickr_hosts={LOOPBACK}", *extra]


def _write_inputs(folder: pathlib.Path, server: PhotoServer, rows, extra_meta=(), extra_urls=()):
    """urls.csv (the rows, plus extra (IMG_ID, url) rows) and meta.csv (IMG_ID,LAT,LON, plus extra ids)."""
    with open(folder / "urls.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["IMG_ID", "url"])
        writer.writerows([(image_id, server.url(path)) for image_id, path, _ in rows] + list(extra_urls))
    lat_lon = {}
    with open(folder / "meta.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["IMG_ID", "LAT", "LON"])
        for k, image_id in enumerate([r[0] for r in rows] + list(extra_meta)):
            lat_lon[image_id] = (-60 + (k * 7.31) % 120, -170 + (k * 13.7) % 340)
            writer.writerow([image_id, *lat_lon[image_id]])
    return lat_lon


def _read_records(out: pathlib.Path) -> dict:
    """{IMG_ID: parsed example} of every record shard in `out`; asserts no IMG_ID twice."""
    found = {}
    for path in sorted(out.glob("*.tfrecord")):
        for serialized in tf.data.TFRecordDataset(str(path)):
            example = records.parse_example(serialized)
            image_id = example[records.IMAGE_ID].numpy().decode()
            assert image_id not in found, f"{image_id} written twice"
            found[image_id] = example
    return found


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """One download of every server case, plus a duplicate row, a non-http URL, a URL without a
    meta row and a meta row without a URL."""
    folder = tmp_path_factory.mktemp("download")
    rows, cases = flickr_rows(CASES)
    with PhotoServer(cases, max_requests=2000, max_seconds=240, stall_s=6.5) as server:
        extra_urls = [(rows[0][0], server.url("/9/1_ab.jpg")), ("ftp_only.jpg", "ftp://127.0.0.1/x.jpg"),
                      ("not_in_meta.jpg", server.url(rows[1][1]))]
        lat_lon = _write_inputs(folder, server, rows, extra_meta=["ftp_only.jpg", "no_url.jpg"],
                                extra_urls=extra_urls)
        result = subprocess.run(_command(folder / "urls.csv", folder / "meta.csv", folder / "out",
                                         "--photos_per_shard=60", f"--write_meta={folder / 'used.csv'}"),
                                env=_env(), cwd=folder, capture_output=True, text=True, timeout=300)
        hits = dict(server.hits)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(folder=folder, out=folder / "out", rows=rows, cases=cases, hits=hits, lat_lon=lat_lon,
                stdout=result.stdout)


def _expected(rows):
    written = {image_id for image_id, _, case in rows if EXPECTED[case] is None}
    missing = collections.defaultdict(set)
    for image_id, _, case in rows:
        if EXPECTED[case] is not None:
            missing[EXPECTED[case]].add(image_id)
    return written, missing


def test_counts_match_what_the_server_served_case_by_case(downloaded):
    written, missing = _expected(downloaded["rows"])
    missing[NOT_HTTP].add("ftp_only.jpg")
    missing[NOT_IN_META].add("not_in_meta.jpg")
    missing[NO_URL].add("no_url.jpg")
    counts = json.loads((downloaded["out"] / "download.json").read_text())
    assert counts["photos_written"] == len(written) and counts["complete"]
    assert counts["missing"] == {reason: len(ids) for reason, ids in missing.items()}
    assert counts["duplicate_rows"] == 1          # the first row of the IMG_ID is downloaded
    with open(downloaded["out"] / "missing.csv", newline="") as f:
        listed = [(r["IMG_ID"], r["reason"]) for r in csv.DictReader(f)]
    assert sorted(listed) == sorted((i, reason) for reason, ids in missing.items() for i in ids)
    # --write_meta: the meta rows of the photos written, as they were.
    with open(downloaded["folder"] / "used.csv", newline="") as f:
        assert {r["IMG_ID"] for r in csv.DictReader(f)} == written


def test_flickr_size_asked_throttled_retried_dead_links_not(downloaded):
    hits, cases = downloaded["hits"], downloaded["cases"]
    assert set(hits) <= set(cases), "a path other than the _z size was requested"
    by_case = collections.defaultdict(list)
    for path, (case, _) in cases.items():
        by_case[case].append(hits.get(path, 0))
    assert set(by_case["throttled"]) == {2}            # 429 once, then the photo in the retry pass
    assert set(by_case["stall"]) == {2}                # timed out, retried once, counted
    assert set(by_case["404"]) == set(by_case["410"]) == set(by_case["photo"]) == {1}


def test_records_hold_the_photos_with_their_meta_and_no_upscaling(downloaded):
    written, _ = _expected(downloaded["rows"])
    found = _read_records(downloaded["out"])
    assert set(found) == written
    served = {image_id: downloaded["cases"][path.replace(".jpg", "_z.jpg")] for image_id, path, _ in downloaded["rows"]}
    sizes = {image_id: Image.open(io.BytesIO(data)).size for image_id, (case, data) in served.items() if case == "photo"}
    for image_id, example in found.items():
        lat, lon = downloaded["lat_lon"][image_id]
        assert example[records.LATITUDE].numpy() == pytest.approx(lat, abs=1e-4)
        assert example[records.LONGITUDE].numpy() == pytest.approx(lon, abs=1e-4)
        if image_id in sizes:
            height, width = tf.io.decode_jpeg(example[records.IMAGE_ENCODED]).shape[:2]
            original = sizes[image_id]
            assert min(height, width) == min(320, min(original))     # shrunk to 320, never enlarged
            assert abs(max(height, width) / min(height, width) - max(original) / min(original)) < 0.02
    # The same manifest tools/build_tfrecords.py writes.
    log = [json.loads(line) for line in (downloaded["out"] / "meta-build.jsonl").read_text().splitlines()]
    assert sum(entry["written"] for entry in log) == len(written)
    assert json.loads((downloaded["out"] / "meta-build.json").read_text())["source"] == "img2dataset"


def test_training_and_evaluation_pipelines_read_the_records(downloaded):
    written, _ = _expected(downloaded["rows"])
    pattern = str(downloaded["out"] / "meta-*.tfrecord")
    lat, lon = np.array(list(downloaded["lat_lon"].values())).T
    world = Partitioning.build(lat, lon, tau_min=0, tau_max=10_000, min_level=0, name="world")
    assert pipeline.train_dataset(pattern, [world], 32, count_only=True) == len(written)
    images, labels = next(iter(pipeline.train_dataset(pattern, [world], 8, image_size=64, shuffle_buffer=16)))
    assert images.shape == (8, 64, 64, 3) and labels["world"].shape == (8,)
    ids = [i.decode() for batch in pipeline.eval_dataset(pattern, 64, image_size=64) for i in batch["id"].numpy()]
    assert sorted(ids) == sorted(written)


def test_a_rerun_of_a_finished_download_changes_nothing(downloaded, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(downloaded["out"], out)
    before = {p.name: p.read_bytes() for p in out.glob("*.tfrecord")}
    summary = download.download(downloaded["folder"] / "urls.csv", downloaded["folder"] / "meta.csv", out,
                                photos_per_shard=60, retries=1, flickr_hosts=LOOPBACK, processes=1)
    assert summary.written == len(_expected(downloaded["rows"])[0])          # nothing fetched: no server
    assert {p.name: p.read_bytes() for p in out.glob("*.tfrecord")} == before


@pytest.mark.slow    # two runs of the command in subprocesses
def test_killed_and_rerun_every_photo_present_exactly_once(tmp_path):
    counts = {"photo": 150, "throttled": 2, "404": 3, "truncated": 1, "html": 1}
    rows, cases = flickr_rows(counts, seed=3)
    with PhotoServer(cases, max_requests=1000, max_seconds=400, delay_s=0.1) as server:
        _write_inputs(tmp_path, server, rows)
        command = _command(tmp_path / "urls.csv", tmp_path / "meta.csv", tmp_path / "out", "--photos_per_shard=10",
                           "--threads=2")
        work = tmp_path / "out" / "img2dataset" / "pass0"
        process = subprocess.Popen(command, env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 200
            while time.time() < deadline and process.poll() is None and len(list(work.glob("*_stats.json"))) < 2:
                time.sleep(0.2)
        finally:
            os.killpg(process.pid, signal.SIGKILL)    # the command, img2dataset's workers and its logger
            process.wait()
        finished = len(list(work.glob("*_stats.json")))
        assert 2 <= finished < 16 and not (tmp_path / "out" / "download.json").exists()
        result = subprocess.run(command, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    written, missing = _expected(rows)
    assert set(_read_records(tmp_path / "out")) == written        # each once: _read_records asserts it
    counts = json.loads((tmp_path / "out" / "download.json").read_text())
    assert counts["photos_written"] == len(written)
    assert counts["missing"] == {reason: len(ids) for reason, ids in missing.items()}


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_meta_rows_download_to_records_with_their_scene_columns(tmp_path):
    if not SHARED_META.exists():
        pytest.skip(f"{SHARED_META} is absent (../shared data is read in place, never copied)")
    with open(SHARED_META, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        lines = [row for _, row in zip(range(300), reader)]
    meta = tmp_path / "im2gps3k_places365.csv"
    with open(meta, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header] + lines)
    # IMG_ID {photo}_{secret}_{server}_{owner}.jpg: the photo's Flickr URL is /{server}/{photo}_{secret}.jpg
    from download_helpers import photo
    cases, urls = {}, []
    for k, row in enumerate(lines):
        photo_id, secret, server_id = row[0].split("_")[:3]
        cases[f"/{server_id}/{photo_id}_{secret}_z.jpg"] = ("photo", photo(400, 300, k))
        urls.append((row[0], f"/{server_id}/{photo_id}_{secret}.jpg"))
    with PhotoServer(cases, max_requests=1000, max_seconds=300) as server:
        with open(tmp_path / "urls.csv", "w", newline="") as f:
            csv.writer(f).writerows([("IMG_ID", "url")] + [(i, server.url(p)) for i, p in urls])
        result = subprocess.run(_command(tmp_path / "urls.csv", meta, tmp_path / "out", "--photos_per_shard=100"),
                                env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = _read_records(tmp_path / "out")
    assert len(found) == len(lines)
    for row in lines:
        example = found[row[0]]
        assert example[records.SCENE_LABELS["S3"]].numpy() == int(row[header.index("S3_Label")])
        assert example[records.SCENE_LABELS["S365"]].numpy() == int(row[header.index("S365_Label")])
        np.testing.assert_allclose(example[records.SCENE_PROBS3].numpy(),
                                   [float(row[header.index(c)]) for c in ("Prob_indoor", "Prob_natural", "Prob_urban")],
                                   atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'geoest[ray]')")
def test_ray_distributor_downloads_every_photo(tmp_path):
    _distributor_run(tmp_path, "ray")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
                    reason="needs pyspark (pip install 'geoest[spark]') and a Java runtime")
def test_spark_distributor_downloads_every_photo(tmp_path):
    _distributor_run(tmp_path, "pyspark")


def _distributor_run(tmp_path, distributor):
    rows, cases = flickr_rows({"photo": 60, "404": 2, "throttled": 1}, seed=5)
    with PhotoServer(cases, max_requests=500, max_seconds=300) as server:
        _write_inputs(tmp_path, server, rows)
        result = subprocess.run(_command(tmp_path / "urls.csv", tmp_path / "meta.csv", tmp_path / "out",
                                         "--photos_per_shard=20", "--processes=2", f"--distributor={distributor}"),
                                env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    written, missing = _expected(rows)
    assert set(_read_records(tmp_path / "out")) == written
    counts = json.loads((tmp_path / "out" / "download.json").read_text())
    assert counts["missing"] == {reason: len(ids) for reason, ids in missing.items()}


# -- bad input ------------------------------------------------------------------------------------
def test_url_list_without_its_columns_is_one_line(tmp_path):
    urls = tmp_path / "urls.csv"
    urls.write_text("photo,link\na.jpg,http://127.0.0.1/a.jpg\n")
    with pytest.raises(InputError, match=r"urls.csv: no column 'IMG_ID', 'url'; the header has photo, link"):
        read_url_list(urls)
    assert read_url_list(urls, "photo", "link").ids == ["a.jpg"]
    meta = tmp_path / "meta.csv"
    meta.write_text("IMG_ID,LAT,LON\na.jpg,1,2\n")
    result = subprocess.run([sys.executable, "-m", "geoest.download", f"--urls_csv={urls}", f"--meta_csv={meta}",
                             f"--output_dir={tmp_path / 'out'}"], env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "no column 'IMG_ID'" in result.stderr


def test_nothing_to_download_and_missing_ray_are_one_line(tmp_path):
    urls, meta = tmp_path / "urls.csv", tmp_path / "meta.csv"
    urls.write_text("IMG_ID,url\na.jpg,http://127.0.0.1/a.jpg\n")
    meta.write_text("IMG_ID,LAT,LON\nb.jpg,1,2\n")
    with pytest.raises(InputError, match="none of its 1 rows has a downloadable URL and a row in"):
        download.download(urls, meta, tmp_path / "out")
    if importlib.util.find_spec("ray") is None:
        with pytest.raises(InputError, match=r"--distributor=ray needs ray"):
            download.download(urls, meta, tmp_path / "out", distributor="ray")


def test_changed_rows_are_refused_not_mixed_in(downloaded, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(downloaded["out"], out)
    meta = tmp_path / "meta.csv"
    lines = (downloaded["folder"] / "meta.csv").read_text().splitlines()
    meta.write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(InputError, match="other options or meta CSV rows"):
        download.download(downloaded["folder"] / "urls.csv", meta, out, photos_per_shard=60, retries=1,
                          flickr_hosts=LOOPBACK)
