"""Locate your own photos (§3.4): coordinates, cell and probability per image, and a map.

    python -m geoest.predict --model_dir=runs/base_M --images='photos/*.jpg' --output=predictions.csv \\
        --geojson=map.geojson --top_k=5

Each image is three-crop classified; with two or more partitionings the hierarchical f*
prediction is the answer (lat, lon, cell), and every partitioning's own answer is listed too. With
--isn_dirs, each photo goes to the ISN of its scene, predicted by --scene_model (an MTN model dir
or a scene classifier). Unreadable files are listed and skipped (a file is judged by its first
bytes, so one that is no image is never read whole), and so are photos whose shorter side is below
--min_side; re-running resumes. Rows of
another model are never appended to --output, and an existing --output or --geojson that predict
did not write for this model is replaced only with --overwrite.

How sure a guess is: every row gets the confidence regions (--region_mass, default 0.5 and 0.9:
the smallest set of cells holding that probability, and R_p, the radius in km around the point
holding p of the error) and a back-off answer (--min_confidence=q: the finest of fine, middle, coarse whose
predicted cell holds at least q, or "none") and p_within_<R>km = P(error <= R), from the distance
weights W_R in the model dir (python -m geoest.within_weights), else from the cell-mean
approximation, which predict says (docs/how_sure.md). Probabilities are temperature-scaled when the model
dir holds a calibration.json (python -m geoest.calibrate): every probability in a row is then the
calibrated one; --raw_probabilities adds the model's own beside them. --max_resolution_km=K caps every
output - point, region, map - to areas at least K km wide.
"""
import glob
import os
import sys

from absl import flags

from geoest import cli
from geoest.errors import InputError
from geoest.files import check_output
from geoest.geo.confidence import Confidence
from geoest.geo.distance_weights import WithinWeights
from geoest.inference import prediction
from geoest.scene import labeler

cli.define_model_flags()
cli.define_scene_flags()
cli.define_confidence_flags(answers=True)
flags.DEFINE_list("images", None, "Image files, folders (their image files) or glob patterns "
                  "('photos/**/*.jpg'), comma-separated.", required=True)
flags.DEFINE_string("output", "predictions.csv", "Predictions CSV (appended to when it exists: resume).")
flags.DEFINE_string("geojson", None, "Optional GeoJSON map: a point per photo and its top cells' polygons.")
flags.DEFINE_integer("top_k", 5, "Cells listed (and drawn) per photo.")
flags.DEFINE_integer("batch_size", 16, "Images per batch.")
flags.DEFINE_bool("overwrite", False, "Replace an --output / --geojson written for another model or not by "
                  "predict (instead of refusing).")
cli.define_photo_flags(links=False, min_side=True)
flags.DEFINE_bool("raw_probabilities", False, "Also list the model's uncalibrated probabilities (raw_probability, "
                  "raw_top_probabilities, <output>_raw_probability) beside the calibrated ones.")
FLAGS = flags.FLAGS


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def image_paths(patterns) -> list:
    """Sorted files matching the patterns (a plain path matches itself; a folder stands for the
    image files directly in it)."""
    paths = set()
    for match in (p for pattern in patterns for p in glob.glob(pattern, recursive=True)):
        if os.path.isdir(match):
            paths.update(os.path.join(match, name) for name in os.listdir(match)
                         if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(match, name)))
        else:
            paths.add(match)
    if not paths:
        raise InputError(f"no files match --images={','.join(patterns)}")
    return sorted(paths)


def main(argv):
    del argv
    settings = cli.confidence_settings(FLAGS)
    paths = image_paths(FLAGS.images)
    check_output(FLAGS.output, inputs=paths)
    if FLAGS.geojson:
        check_output(FLAGS.geojson, inputs=paths + [FLAGS.output], flag="--geojson")
    if bool(FLAGS.model_dir) == bool(FLAGS.isn_dirs):
        raise InputError("give either --model_dir or --isn_dirs")
    if FLAGS.isn_dirs and not FLAGS.scene_model:
        if not labeler.default_weights_path().is_file():
            raise InputError(f"--isn_dirs needs --scene_model to route each photo by its scene, or the converted "
                             f"Places365 ResNet-152 in {labeler.default_weights_path()} (python -m geoest.convert_places365)")
        FLAGS.scene_model = labeler.PLACES365_MODEL
    (method,), image_size, _ = cli.methods_from_flags(FLAGS)
    from geoest.data.photo_checks import default_min_side
    from geoest.data.pipeline import image_dataset
    from geoest.data.skip_log import SkipLog

    locator = method.locator
    confidence = Confidence(locator.partitionings, locator.hierarchy.parents if locator.hierarchy else None,
                            **settings)
    weights, distance_temperature = method.within_weights, method.distance_temperature   # the model dir's W_R
    if weights is None:
        weights = WithinWeights.from_means(locator.partitioning(locator.main), locator.centers)
        print(f"no distance weights W_R in {FLAGS.model_dir or 'the ISN dirs'}: P(error <= R) and R_p take each "
              "cell's photos to lie at its mean (the cell-mean approximation; python -m geoest.within_weights "
              "writes W_R from the training coordinates into the model dir)", file=sys.stderr)
    skip_log = SkipLog()
    min_side = default_min_side(image_size) if FLAGS.min_side is None else FLAGS.min_side
    batches = lambda paths: image_dataset(paths, FLAGS.batch_size, image_size=image_size, skip_log=skip_log,
                                          min_side=min_side).as_numpy_iterator()
    result = prediction.predict_images(method, paths, FLAGS.output, batches, top_k=FLAGS.top_k,
                                       confidence=confidence, geojson=FLAGS.geojson, overwrite=FLAGS.overwrite,
                                       within_weights=weights, distance_temperature=distance_temperature,
                                       raw_probabilities=FLAGS.raw_probabilities)
    reasons = dict(skip_log.unreadable)
    for path in result["unreadable"]:
        print(f"unreadable, skipped: {path} ({reasons.get(path, 'cannot be decoded')})", file=sys.stderr)
    for path in result["nan"]:
        print(f"probabilities hold NaN, skipped: {path}", file=sys.stderr)
    print(f"{result['predicted']} photos located ({result['skipped_done']} already in {FLAGS.output}, "
          f"{len(result['unreadable'])} unreadable) -> {FLAGS.output}")
    if result["predicted"] + result["skipped_done"] == 0:
        raise InputError(f"none of the {len(paths)} files matching --images could be read as an image")
    if FLAGS.geojson:
        n = prediction.write_geojson(FLAGS.output, method.locator, FLAGS.geojson)
        print(f"map of {n} photos and their regions -> {FLAGS.geojson} (and a PNG beside it)")


if __name__ == "__main__":
    cli.run(main)
