r"""Labels photos with Places365 scene classes (§3.2), written in the Im2GPS meta format.

    python -m geoest.label_scenes --images_dir=IMAGES --meta_csv=META.csv \
        --output_csv=META_places365.csv [--weights=resnet152_places365.keras] \
        [--batch_size=32 --preprocess=caffe --all_probs --places365_dir=DIR --download]

Output columns: IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,
Prob_urban (+ prob365_0..prob365_364 with --all_probs). Re-running the same command resumes
(OUTPUT.json records the classifier, and another one is refused unless --overwrite); unreadable
images are listed in OUTPUT.errors.csv.
"""
from absl import flags

from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.scene import labeler, places365

flags.DEFINE_string("images_dir", None, "Root of the images; paths are IMAGES_DIR/IMG_ID.")
flags.DEFINE_string("meta_csv", None, "CSV with IMG_ID, LAT, LON (AUTHOR kept if present).")
flags.DEFINE_string("output_csv", None, "Meta CSV to write (appended to when resuming).")
flags.DEFINE_string("weights", None, "Scene classifier: a .keras model with 365 probability outputs. "
                    f"Default: {labeler.WEIGHTS_FILE} in the Places365 directory, the converted release "
                    "(python -m geoest.convert_places365).")
flags.DEFINE_integer("batch_size", 32, "Images per model call.")
flags.DEFINE_integer("image_size", 224, "Input side for models that accept any size.")
flags.DEFINE_enum("preprocess", "caffe", list(labeler.PREPROCESSING),
                  "Input convention of a model taking float images (the converted release takes uint8 "
                  "photos and preprocesses them itself).")
flags.DEFINE_boolean("all_probs", False, "Also write the 365 category probabilities.")
flags.DEFINE_string("places365_dir", None, "Directory with categories_places365.txt and "
                    "scene_hierarchy_places365.csv. Default: "
                    f"{places365.default_cache_dir()}")
flags.DEFINE_boolean("download", False, "Fetch the two Places365 files from their official "
                     "sources into --places365_dir if they are not there.")
flags.DEFINE_integer("workers", None, "Image-decoding threads (default: CPU count).")
flags.DEFINE_boolean("overwrite", False, "Start afresh over an --output_csv that another scene model, "
                     "--preprocess, input size or hierarchy wrote (resuming it would mix two classifiers' labels).")
cli.define_photo_flags(absolute_paths=True)
flags.mark_flags_as_required(["images_dir", "meta_csv", "output_csv"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    hierarchy = places365.load_default_hierarchy(FLAGS.places365_dir, download=FLAGS.download)
    weights = FLAGS.weights or labeler.default_weights_path(FLAGS.places365_dir)
    model = labeler.load_scene_classifier(weights, num_categories=hierarchy.num_categories)
    rows = read_meta_csv(FLAGS.meta_csv, scene=False)     # the scene columns are what it writes
    summary = labeler.label_images(
        model, hierarchy, FLAGS.images_dir, rows, FLAGS.output_csv,
        batch_size=FLAGS.batch_size, preprocess=FLAGS.preprocess,
        image_size=FLAGS.image_size, all_probs=FLAGS.all_probs, workers=FLAGS.workers,
        allow_absolute_paths=FLAGS.allow_absolute_paths, follow_links=FLAGS.follow_links, overwrite=FLAGS.overwrite,
        model_manifest=labeler.read_model_manifest(weights, model))
    print(f"{summary.output_csv}: {summary.labeled} images labelled, {summary.resumed} done "
          f"before, {len(summary.failed)} unreadable"
          + (f", {summary.links_followed} read through links out of --images_dir" if summary.links_followed else ""))
    for img_id, reason in summary.failed[:10]:
        print(f"  unreadable {img_id}: {reason}")
    if summary.failed:
        print(f"  all unreadable images are listed in {summary.errors_csv}")


if __name__ == "__main__":
    cli.run(main)
