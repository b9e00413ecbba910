"""Evaluate trained models on a test set (§4, Table 6): great-circle accuracy at 1 / 25 / 200 /
750 / 2500 km per partitioning, for the hierarchy (f*) and per scene concept.

    python -m geoest.evaluate --model_dir=runs/base_M --test_records='im2gps3k/*.tfrecord' \\
        --output_dir=eval/im2gps3k --reference=im2gps3k
    python -m geoest.evaluate --isn_dirs=indoor=runs/isn_indoor,natural=runs/isn_natural,urban=runs/isn_urban \\
        --model_dir=runs/base_M --images_dir=im2gps3k/ --meta_csv=im2gps3k_places365.csv --output_dir=eval/isn

Writes per method (<name> = the model dir's folder name, or "ISNs") results_<output>.csv in the
published format, plus summary.json, table6.txt and accuracy.png in --output_dir; and, per method,
how sure its answers are: coverage of R_0.5 / R_0.9 before and after temperature scaling, the
calibration error of the top cell's probability (reliability.png) and the accuracy-coverage curve
(accuracy_coverage.png, with its area). With distance weights W_R in a model dir (python -m
geoest.within_weights), confidence.json also holds <method>/within: the ECE of P(error <= R) per R,
coverage of the quantile R_p and of its cell set, the share of photos in no cell, the most confident
half and the areas beside random orders and the oracle, and back-off at --min_confidence per level;
accuracy_coverage.png then ranks by P(error <= R). Re-running the same command resumes; another test set or
other models into the same --output_dir are refused, and files evaluate did not write there are
never replaced (unless --overwrite). Unreadable photos and damaged shards are skipped and named;
losing more than --max_skipped of the test set fails. SIGTERM or Ctrl-C stops it after the batch
being scored, with the photos scored so far saved (exit status 75); re-running resumes there.
Links in --images_dir to files outside it are skipped and named unless --follow_links; photos whose
shorter side is below --min_side are skipped and named, not answered.
"""
import pathlib
import sys

from absl import flags

from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.errors import InputError
from geoest.inference import evaluation
from geoest.inference.batches import image_batches, record_batches, test_set_identity
from geoest.inference.overlap import record_ids, training_overlap
from geoest.locks import hold_lock

LOCK = "evaluate.lock"     # held while an evaluation writes into --output_dir

cli.define_model_flags(several=True)
cli.define_scene_flags()
cli.define_confidence_flags()
flags.DEFINE_string("test_records", None, "TFRecord file pattern of the test set.")
flags.DEFINE_string("images_dir", None, "Test images folder (with --meta_csv: IMG_ID is the path in it).")
flags.DEFINE_string("meta_csv", None, "Test meta CSV: IMG_ID,LAT,LON[,scene columns].")
flags.DEFINE_string("output_dir", None, "Folder for results, summary.json, table6.txt, accuracy.png.",
                    required=True)
flags.DEFINE_enum("reference", None, ["im2gps", "im2gps3k"], "Print the paper's Table 6 rows beside.")
flags.DEFINE_integer("batch_size", 16, "Images per batch (each gives 3 crops).")
flags.DEFINE_bool("overwrite", False, "Replace files in --output_dir that this evaluation did not write "
                  "(another test set's or models' results, a file of yours), and start afresh.")
flags.DEFINE_float("max_skipped", 0.01, "The largest fraction of the test set that may be skipped "
                   "(unreadable photos, damaged shards) before evaluate fails; 1 accepts any loss.")
flags.DEFINE_bool("allow_train_overlap", False, "Evaluate test records holding photos a model was trained on "
                  "(its operative_config.gin's training files), e.g. as a deliberate check; refused otherwise.")
cli.define_photo_flags(min_side=True, absolute_paths=True)
flags.DEFINE_float("min_confidence", 0.5, "Back-off measured (with distance weights W_R in a model dir): each photo "
                   "answered at the finest level whose P(error <= R_level) reaches this q (fine 25 km, middle 200 km, "
                   "coarse 750 km), else not; in [0, 1].")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if bool(FLAGS.test_records) == bool(FLAGS.images_dir or FLAGS.meta_csv):
        raise InputError("give the test set as --test_records, or as --images_dir with --meta_csv")
    if FLAGS.images_dir and not FLAGS.meta_csv:
        raise InputError("--images_dir needs --meta_csv (the ground-truth coordinates)")
    masses = cli.region_mass_flag(FLAGS.region_mass)
    min_confidence = cli.min_confidence_flag(FLAGS.min_confidence)
    methods, image_size, hierarchy = cli.methods_from_flags(FLAGS)
    from geoest.data.skip_log import SkipLog
    skip_log = SkipLog()
    if FLAGS.test_records:
        total = None
        batches = record_batches(FLAGS.test_records, FLAGS.batch_size, image_size, hierarchy, skip_log)
    else:
        total = len(read_meta_csv(FLAGS.meta_csv))
        batches = image_batches(FLAGS.images_dir, FLAGS.meta_csv, FLAGS.batch_size, image_size,
                                hierarchy, skip_log, allow_absolute_paths=FLAGS.allow_absolute_paths,
                                follow_links=FLAGS.follow_links, min_side=FLAGS.min_side)
    test_set = test_set_identity(FLAGS.test_records, FLAGS.images_dir, FLAGS.meta_csv)
    if FLAGS.test_records and not FLAGS.allow_train_overlap:
        _refuse_training_photos(FLAGS.test_records, FLAGS.model_dir + FLAGS.isn_dirs)
    output_dir = pathlib.Path(FLAGS.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"--output_dir={output_dir} is a file; expected a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    with hold_lock(output_dir / LOCK, f"evaluation folder {output_dir}", "--output_dir"):
        _evaluate(evaluation, methods, batches, total, test_set, skip_log, masses, min_confidence)
    print(f"results, summary.json, table6.txt and accuracy.png in {FLAGS.output_dir}")


def _refuse_training_photos(test_records, model_specs) -> None:
    """Refuses test records holding photos a model was trained on (its recorded training files)."""
    import tensorflow as tf

    test_files = tf.io.gfile.glob(test_records)
    test_ids = record_ids(test_files)
    for spec in model_specs:
        model_dir = cli.parse_named(spec)[1]
        shared = training_overlap(model_dir, test_files, test_ids) if pathlib.Path(model_dir).is_dir() else 0
        if shared:
            raise InputError(f"--test_records={test_records}: {shared} of its {len(test_ids)} photos are in the "
                             f"training records of {model_dir} (its operative_config.gin); evaluate on photos it "
                             "never saw, or pass --allow_train_overlap for a deliberate check")


def _evaluate(evaluation, methods, batches, total, test_set, skip_log, masses, min_confidence) -> None:
    try:
        evaluation.evaluate(methods, batches, FLAGS.output_dir, total=total, reference=FLAGS.reference,
                            test_set=test_set, overwrite=FLAGS.overwrite, skip_log=skip_log,
                            max_skipped=FLAGS.max_skipped, masses=masses, min_confidence=min_confidence)
    finally:
        for path, (records, size) in skip_log.damaged.items():
            print(f"damaged shard {path}: unreadable from record {records} (byte {size}); its earlier "
                  "records were scored", file=sys.stderr)
        if skip_log.links_followed:
            print(f"read {skip_log.links_followed} photo(s) through links out of --images_dir (--follow_links)")
        if skip_log.unreadable:
            print(f"skipped {len(skip_log.unreadable)} unreadable image(s): "
                  + ", ".join(f"{i} ({why})" for i, why in skip_log.unreadable[:20]), file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
