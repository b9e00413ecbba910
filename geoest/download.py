"""Downloads the photos of a URL list (img2dataset underneath) and writes them as geoest records.

python -m geoest.download --urls_csv=URLS.csv --meta_csv=META.csv --output_dir=DIR \
    [--shorter_side=320 --processes=N --threads=N --distributor=multiprocessing|pyspark|ray \
     --write_meta=USED.csv]

Writes DIR/<prefix>-*.tfrecord (geoest records, as tools/build_tfrecords.py writes them),
DIR/download.json (photos written, counts by reason) and DIR/missing.csv (IMG_ID, reason).
Re-running the same command resumes. See docs/photos.md.
"""
import logging

from absl import flags

from geoest import cli
from geoest.data import download as download_lib
from geoest.data.build import SHORTER_SIDE
from geoest.data.url_list import FLICKR_HOSTS, FLICKR_SIZE

FLAGS = flags.FLAGS
flags.DEFINE_string("urls_csv", None, "URL list: a CSV with IMG_ID and URL columns (or headerless IMG_ID,URL rows).")
flags.DEFINE_string("id_column", "IMG_ID", "The IMG_ID column of --urls_csv.")
flags.DEFINE_string("url_column", "url", "The URL column of --urls_csv.")
flags.DEFINE_string("meta_csv", None, "Meta CSV (IMG_ID,LAT,LON[,scene columns]) giving each record's "
                    "coordinates and scene columns.")
flags.DEFINE_string("output_dir", None, "Folder for the records, download.json and missing.csv.")
flags.DEFINE_integer("shorter_side", SHORTER_SIDE, "Shrink photos to this shorter side (px); smaller ones "
                     "are kept as they are.")
flags.DEFINE_integer("processes", None, "img2dataset processes (Spark: local cores); default all CPU cores.")
flags.DEFINE_integer("threads", 64, "Download threads per process.")
flags.DEFINE_enum("distributor", "multiprocessing", ["multiprocessing", "pyspark", "ray"],
                  "img2dataset's distributor.")
flags.DEFINE_integer("photos_per_shard", download_lib.PHOTOS_PER_SHARD, "URL-list rows per shard (the unit of resume).")
flags.DEFINE_float("timeout_s", 10.0, "Seconds per request.")
flags.DEFINE_integer("retries", 3, "Later passes over throttled (429/503), timed-out and unreachable photos.")
flags.DEFINE_float("retry_wait_s", 60.0, "Wait before the first retry pass (s), doubled for each further pass.")
flags.DEFINE_string("flickr_size", FLICKR_SIZE, "Flickr size suffix to ask for (z: 640 px); empty: URLs as given.")
flags.DEFINE_string("flickr_hosts", FLICKR_HOSTS, "Regex of the hosts whose URLs are Flickr "
                    "photo URLs (asked for --flickr_size).")
flags.DEFINE_string("prefix", None, "Record shard name prefix; default the meta CSV's stem.")
flags.DEFINE_string("write_meta", None, "Write the meta CSV rows of the photos written to this CSV.")
flags.DEFINE_bool("overwrite", False, "Start afresh in an --output_dir holding a download of other rows or options.")
flags.DEFINE_string("spark_master", None, "pyspark: the Spark master URL (default local[--processes]).")
flags.DEFINE_string("spark_driver_memory", "4g", "pyspark: memory of the Spark driver geoest starts.")
flags.mark_flags_as_required(["urls_csv", "meta_csv", "output_dir"])


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    summary = download_lib.download(
        FLAGS.urls_csv, FLAGS.meta_csv, FLAGS.output_dir, id_column=FLAGS.id_column, url_column=FLAGS.url_column,
        shorter_side=FLAGS.shorter_side, processes=FLAGS.processes, threads=FLAGS.threads,
        distributor=FLAGS.distributor, photos_per_shard=FLAGS.photos_per_shard, timeout_s=FLAGS.timeout_s,
        retries=FLAGS.retries, retry_wait_s=FLAGS.retry_wait_s, flickr_size=FLAGS.flickr_size or None,
        flickr_hosts=FLAGS.flickr_hosts,
        prefix=FLAGS.prefix, write_meta=FLAGS.write_meta, overwrite=FLAGS.overwrite,
        spark_master=FLAGS.spark_master, spark_driver_memory=FLAGS.spark_driver_memory)
    print(summary.report())
    if not summary.counts["complete"]:
        print("some shards are unfinished: re-run the same command to resume")
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
