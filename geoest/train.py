r"""Trains a Table-3 variant chosen by gin files (§3.3, §4). Re-running the same command resumes.

  python -m geoest.train --gin_file=gin/base_M.gin --model_dir=models/base_M
  python -m geoest.train --gin_file=isn_urban.gin --model_dir=models/isn_urban \
      --gin_param="BASE_M_DIR='models/base_M'"
  python -m geoest.train --gin_file=base_M.gin --gin_file=smoke.gin --model_dir=/tmp/smoke

The best-on-validation model is written to MODEL_DIR/best.keras; see geoest.training.trainer for
the other files. With validation records, the temperatures of the best model are then fitted on
them (MODEL_DIR/calibration.json, as python -m geoest.calibrate does; --nocalibrate skips it).
--strategy=multi_worker reads the cluster from TF_CONFIG; --strategy=tpu --tpu=ADDRESS.
SIGTERM / Ctrl-C: the current step finishes, a checkpoint is written there (with the data
position) and the run exits with status 75; the same command resumes at that step.
"""
from absl import flags

from geoest import cli
from geoest.inference.report import report_lines
from geoest.inference.temperature_fit import calibrate_model_dir, validation_files

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin files (path or name under gin/), applied in order.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings applied after the files, e.g. train.epochs=1.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and best.keras.", required=True)
flags.DEFINE_enum("strategy", "default", ["default", "one_device", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or grpc address for --strategy=tpu.")
flags.DEFINE_float("max_skipped", None, "The largest fraction of the training photos read in an epoch that may "
                   "be lost to damage (unreadable or undecodable JPEGs) before training stops; default "
                   "train.max_skipped (0.01).")
flags.DEFINE_bool("calibrate", True, "After training, fit the temperatures on the validation records (if any).")


def main(argv):
    del argv
    from geoest.training import make_strategy, train
    from geoest.training.config import parse_gin, variant_name

    strategy = make_strategy(FLAGS.strategy, FLAGS.tpu)  # first: multi_worker needs it before other ops
    flag_params = [] if FLAGS.max_skipped is None else [f"train.max_skipped = {FLAGS.max_skipped!r}"]
    parse_gin(FLAGS.gin_file, FLAGS.gin_param + flag_params)
    train(FLAGS.model_dir, strategy, variant=variant_name(FLAGS.gin_file))
    from geoest.training.distribute import is_chief

    if FLAGS.calibrate and is_chief(strategy) and validation_files(FLAGS.model_dir):
        fitted = calibrate_model_dir(FLAGS.model_dir)
        print("\n".join(report_lines(fitted.report)))


if __name__ == "__main__":
    cli.run(main)
