"""Writes a folder of photos and their meta CSV as sharded TFRecords (design.md schema).

python -m geoest.build_tfrecords --images_dir=DIR --meta_csv=META.csv --output_dir=OUT \
    [--num_shards=N --shorter_side=320 --workers=N --prefix=NAME]

Meta CSV: IMG_ID,LAT,LON plus optional scene columns (the Im2GPS meta format's
Prob_indoor,Prob_natural,Prob_urban and/or prob365_0..prob365_364). IMG_IDs are paths
relative to --images_dir and may contain sub-folders (45/77/3228511372.jpg); one that leaves
--images_dir (or is absolute, without --allow_absolute_paths) is skipped and listed, never read.
Re-running the same command resumes: finished shards are kept, once the meta CSV's rows and the
options are checked to be those they were built from (else refused; --overwrite rebuilds).
Unreadable photos are skipped and listed.
"""
import logging

from absl import flags

from geoest import cli
from geoest.data.build import SHORTER_SIDE, build_tfrecords

FLAGS = flags.FLAGS
flags.DEFINE_string("images_dir", None, "Folder the IMG_IDs of --meta_csv are relative to.")
flags.DEFINE_string("meta_csv", None, "IMG_ID,LAT,LON[,scene columns] CSV.")
flags.DEFINE_string("output_dir", None, "Folder for the shards (created if needed).")
flags.DEFINE_integer("num_shards", None, "Number of shards; default one per 4000 photos.")
flags.DEFINE_integer("shorter_side", SHORTER_SIDE, "Shrink photos to this shorter side (px).")
flags.DEFINE_integer("workers", None, "Processes reading photos; default all CPU cores.")
flags.DEFINE_string("prefix", None, "Shard file name prefix; default the meta CSV's stem.")
flags.DEFINE_bool("overwrite", False, "Rebuild shards of this prefix in --output_dir that were built from "
                  "other meta CSV rows or options (instead of refusing).")
cli.define_photo_flags(absolute_paths=True)
flags.mark_flags_as_required(["images_dir", "meta_csv", "output_dir"])


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    summary = build_tfrecords(FLAGS.images_dir, FLAGS.meta_csv, FLAGS.output_dir,
                              num_shards=FLAGS.num_shards, shorter_side=FLAGS.shorter_side,
                              workers=FLAGS.workers, prefix=FLAGS.prefix, overwrite=FLAGS.overwrite,
                              allow_absolute_paths=FLAGS.allow_absolute_paths, follow_links=FLAGS.follow_links)
    print(summary.report())


if __name__ == "__main__":
    cli.run(main)
