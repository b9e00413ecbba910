r"""Runs the paper's whole recipe, from the URL lists and the published meta to both halves of
Table 6 (and Table 4), beside the paper's figures. Re-running the same command resumes.

  python -m geoest.reproduce --data_dir=data --work_dir=work [--dry_run]

--data_dir holds <set>_urls.csv and <set>_places365.csv for mp16, yfcc25600, im2gps and im2gps3k
(or a folder <set>/ of photos instead of the URL list) and mp16_partitions/cells_50_*.csv. Each
stage is skipped when its outputs are complete and refused when its command or inputs changed
(manifests in WORK_DIR/stages/). --dry_run prints every command (docs/reproduce.md).
"""
import logging

from absl import flags

from geoest import cli
from geoest.reproduction import Settings, reproduce, sequence_text

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "URL lists, published meta CSVs and mp16_partitions/.", required=True)
flags.DEFINE_string("work_dir", None, "Records, models, evaluations, stage manifests, table6.txt.", required=True)
flags.DEFINE_bool("dry_run", False, "Print every command of the recipe and run none.")
flags.DEFINE_bool("regenerate_partitionings", False, "§3.1: make the partitionings anew from the MP-16 photos "
                  "downloaded instead of using the published ones.")
flags.DEFINE_multi_string("gin_file", [], "Gin file added to every training stage (e.g. a tiny run's).")
flags.DEFINE_multi_string("gin_param", [], "Gin binding added to every training stage, e.g. train.batch_size=256.")
flags.DEFINE_multi_string("train_flag", [], "Flag passed to every geoest.train, e.g. --strategy=mirrored.")
flags.DEFINE_multi_string("download_flag", [], "Flag passed to every geoest.download, e.g. --processes=16.")
flags.DEFINE_multi_string("records_flag", [], "Flag passed to every geoest.build_tfrecords, e.g. --workers=8.")
flags.DEFINE_multi_string("evaluate_flag", [], "Flag passed to every geoest.evaluate, e.g. --batch_size=64.")


def main(argv):
    del argv
    settings = Settings(FLAGS.data_dir, FLAGS.work_dir, gin_files=tuple(FLAGS.gin_file),
                        gin_params=tuple(FLAGS.gin_param), train_flags=tuple(FLAGS.train_flag),
                        download_flags=tuple(FLAGS.download_flag),
                        records_flags=tuple(FLAGS.records_flag), evaluate_flags=tuple(FLAGS.evaluate_flag),
                        regenerate_partitionings=FLAGS.regenerate_partitionings)
    if FLAGS.dry_run:
        print(sequence_text(settings), end="")
        return 0
    logging.getLogger().setLevel(logging.INFO)
    print(reproduce(settings), end="")
    return 0


if __name__ == "__main__":
    cli.run(main)
