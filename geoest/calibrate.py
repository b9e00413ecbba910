"""Fit the temperatures of a trained model on validation data (beyond the paper: calibration).

    python -m geoest.calibrate --model_dir=runs/base_M [--validation_records='val-*.tfrecord']

One temperature per head and one for f*, each minimising the negative log-likelihood of the
validation photos' true cells. Writes <model_dir>/calibration.json, which evaluate, predict and
export then use, and <model_dir>/reliability.png; prints the coverage of R_0.5 / R_0.9 and the
expected calibration error before and after. Default validation data: the records the model was
trained with (its operative_config.gin).
"""
from absl import flags

from geoest import cli
from geoest.errors import InputError
from geoest.inference.batches import image_batches, record_batches
from geoest.inference.calibration import CALIBRATION_FILE
from geoest.inference.report import report_lines
from geoest.inference.temperature_fit import calibrate_model_dir

cli.define_model_flags(required=True, located=False)
cli.define_confidence_flags()
flags.DEFINE_string("validation_records", None, "TFRecord pattern of the validation set (default: the run's).")
flags.DEFINE_string("images_dir", None, "Validation images folder (with --meta_csv: IMG_ID is the path in it).")
flags.DEFINE_string("meta_csv", None, "Validation meta CSV: IMG_ID,LAT,LON.")
flags.DEFINE_integer("batch_size", 16, "Images per batch (each gives 3 crops).")
cli.define_photo_flags(min_side=True)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    masses = cli.region_mass_flag(FLAGS.region_mass)
    if FLAGS.images_dir and not FLAGS.meta_csv or FLAGS.meta_csv and not FLAGS.images_dir:
        raise InputError("--images_dir and --meta_csv go together")
    if FLAGS.validation_records and FLAGS.images_dir:
        raise InputError("give --validation_records or --images_dir with --meta_csv, not both")
    batches = None
    if FLAGS.validation_records:
        batches = lambda size: record_batches(FLAGS.validation_records, FLAGS.batch_size, size)  # noqa: E731
    elif FLAGS.images_dir:
        batches = lambda size: image_batches(  # noqa: E731
            FLAGS.images_dir, FLAGS.meta_csv, FLAGS.batch_size, size, follow_links=FLAGS.follow_links,
            min_side=FLAGS.min_side)
    result = calibrate_model_dir(FLAGS.model_dir, batches, masses=masses, batch_size=FLAGS.batch_size,
                                 partitioning_csvs=FLAGS.partitionings)
    print("\n".join(report_lines(result.report)))
    print(f"-> {FLAGS.model_dir}/{CALIBRATION_FILE}, {FLAGS.model_dir}/reliability.png")


if __name__ == "__main__":
    cli.run(main)
