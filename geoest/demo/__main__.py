r"""The paper end to end on one CPU in minutes: `make demo` runs

    python -m geoest.demo --output_dir=demo_output

It generates a synthetic photo collection shaped like MP-16 (geoest.demo.data), builds the
three partitionings (§3.1), writes TFRecords, trains base(M, f*) with gin/demo.gin and the
three ISNs (§3.3), evaluates them beside the trivial predictor (Table 6), locates a few photos
into a GeoJSON map and ends with a summary naming every artifact. Re-running resumes.
Exit status: 0; 2 for bad input (one line); 1 when a check of the summary failed.
"""
import os

from absl import flags, logging

from geoest import cli
from geoest.demo import run

flags.DEFINE_string("output_dir", "demo_output", "The one folder for every artifact of the demo.")
flags.DEFINE_integer("num_images", run.DEFAULT_NUM_IMAGES,
                     "Synthetic photos over all splits (75 % train, 10 % val, 15 % test).")
flags.DEFINE_integer("seed", 0, "Seed of the photo collection and of the initial weights.")
flags.DEFINE_integer("image_size", run.DEFAULT_IMAGE_SIZE, "Shorter side of the synthetic photos (px).")
flags.DEFINE_bool("isns", True, "Also fine-tune and evaluate the ISNs(M, f*, S3).")
flags.DEFINE_integer("isn_epochs", run.DEFAULT_ISN_EPOCHS, "Fine-tuning epochs of each ISN.")
flags.DEFINE_bool("distance_targets", True, "Also train base(M, f*) with distance-aware targets (beyond the paper).")
flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings for training, e.g. 'train.epochs = 4'.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # TensorFlow's start-up chatter
    logging.set_verbosity(logging.WARNING)              # progress bars and epoch lines say enough
    result = run.run_demo(FLAGS.output_dir, num_images=FLAGS.num_images, seed=FLAGS.seed,
                          image_size=FLAGS.image_size, isns=FLAGS.isns, isn_epochs=FLAGS.isn_epochs,
                          gin_params=FLAGS.gin_param, distance_targets=FLAGS.distance_targets)
    print(run.closing_summary(result))
    return 0 if all(result.checks.values()) else 1


if __name__ == "__main__":
    cli.run(main)
