"""Export a trained model as a SavedModel for TF Serving or `tf.saved_model.load` (§3.4 inside).

    python -m geoest.export --model_dir=runs/base_M --export_dir=exported/base_M/1 [--top_k=5]

The signature `serving_default` takes `image_bytes` (tf.string [batch], encoded JPEG / PNG) and
returns `lat`, `lon` (the f* answer, or the only partitioning's) and, per output O (each
partitioning and "hierarchy"), O_lat, O_lon, O_class, O_probability, O_top_classes,
O_top_probabilities and O_top_cells (S2 tokens). Decoding, three crops, softmax mean, hierarchy
and Class2GPS are inside the graph, and so is how sure the answer is: the (calibrated)
probability of the predicted cell, the confidence regions (region_size_50, radius_km_50, ...)
and a back-off answer (level, answer_lat, ...; --min_confidence). --max_resolution_km=K bakes a
resolution cap into the graph: the model then returns only areas at least K km wide, and nothing
finer, whoever serves it.
"""
from absl import app, flags

from geoest.cli import clear_input_errors

flags.DEFINE_string("model_dir", None, "Trained model dir (best.keras and partitionings/).", required=True)
flags.DEFINE_string("export_dir", None, "New folder for the SavedModel (TF Serving: .../<name>/<version>).",
                    required=True)
flags.DEFINE_list("partitionings", [], "Partitioning CSVs (default: those in the model dir).")
flags.DEFINE_integer("top_k", 5, "Top cells returned per output.")
flags.DEFINE_enum("centers", "mean", ["mean", "geometric"], "Class2GPS: cell mean coordinate or S2 cell centre.")
flags.DEFINE_list("region_mass", ["0.5", "0.9"], "Masses p of the confidence regions, each in (0, 1).")
flags.DEFINE_float("min_confidence", 0.0, "Back-off threshold q in [0, 1] (fine -> middle -> coarse -> none).")
flags.DEFINE_float("max_resolution_km", None, "Resolution cap baked into the SavedModel: nothing finer (km).")
flags.DEFINE_string("temperatures", None, "Temperature file (python -m geoest.calibrate); default: the model "
                    "dir's calibration.json when it has one; 'none': uncalibrated.")
FLAGS = flags.FLAGS


@clear_input_errors
def main(argv):
    del argv
    from geoest.geo import Hierarchy
    from geoest.geo import confidence as conf
    from geoest.inference.calibration import load_calibration
    from geoest.inference.modeldir import load_geo_model
    from geoest.inference.serving import export_saved_model

    masses = conf.check_masses(FLAGS.region_mass)
    min_confidence = conf.check_min_confidence(FLAGS.min_confidence)
    cap_km = None if FLAGS.max_resolution_km is None else conf.check_max_resolution(FLAGS.max_resolution_km)
    geo_model = load_geo_model(FLAGS.model_dir, FLAGS.partitionings)
    parts = sorted(geo_model.partitionings, key=len)
    confidence = conf.Confidence(parts, Hierarchy(parts).parents if len(parts) > 1 else None, masses, min_confidence,
                                 cap_km, FLAGS.centers)
    calibration = load_calibration(geo_model, FLAGS.temperatures)
    path = export_saved_model(geo_model, FLAGS.export_dir, top_k=FLAGS.top_k, centers=FLAGS.centers,
                              confidence=confidence, calibration=calibration)
    what = (f"capped at {cap_km:g} km: lat, lon, cell and regions of areas at least that wide" if cap_km else
            f"lat, lon, top cells per {', '.join(p.name for p in parts)} and hierarchy, regions")
    print(f"SavedModel of {geo_model.path} ({'calibrated' if calibration else 'uncalibrated'}) -> {path} "
          f"(signature serving_default: image_bytes -> {what})")


if __name__ == "__main__":
    app.run(main)
