"""Export a trained model as a SavedModel for TF Serving or `tf.saved_model.load` (§3.4 inside).

    python -m geoest.export --model_dir=runs/base_M --export_dir=exported/base_M/1 [--top_k=5]

The signature `serving_default` takes `image_bytes` (tf.string [batch], encoded JPEG / PNG) and
returns `lat`, `lon` (the f* answer, or the only partitioning's) and, per output O (each
partitioning and "hierarchy"), O_lat, O_lon, O_class, O_probability, O_top_classes,
O_top_probabilities and O_top_cells (S2 tokens). Decoding, three crops, softmax mean, hierarchy
and Class2GPS are inside the graph, and so is how sure the answer is: the (calibrated)
probability of the predicted cell, the confidence regions (region_size_50, region_cells_50, ...)
and a back-off answer (level, answer_lat, ...; --min_confidence). --max_resolution_km=K bakes a
resolution cap into the graph: the model then returns only areas at least K km wide, and nothing
finer, whoever serves it. From the distance weights W_R in the model dir (python -m
geoest.within_weights; else the cell-mean approximation, which export says) the model also returns
p_within_<R>km = P(error <= R) for R = 1 / 25 / 200 / 750 / 2500 km and radius_km_<p>, the quantile
R_p, computed in the graph from the calibrated f* (and the model dir's distance temperature), equal
to geoest.predict's and capped the same way.
"""
import sys

from absl import flags

from geoest import cli
from geoest.geo import Hierarchy
from geoest.geo.confidence import Confidence
from geoest.geo.distance_weights import WithinWeights
from geoest.inference.calibration import load_calibration, load_distance_events
from geoest.inference.modeldir import load_geo_model
from geoest.inference.serving import export_saved_model

cli.define_model_flags(required=True)
cli.define_confidence_flags(answers=True)
flags.DEFINE_string("export_dir", None, "New folder for the SavedModel (TF Serving: .../<name>/<version>).",
                    required=True)
flags.DEFINE_integer("top_k", 5, "Top cells returned per output.")
flags.DEFINE_bool("raw_probabilities", False, "With temperatures, also return the model's uncalibrated "
                  "probabilities (O_raw_probability, O_raw_top_probabilities) beside the calibrated ones.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    settings = cli.confidence_settings(FLAGS)

    geo_model = load_geo_model(FLAGS.model_dir, FLAGS.partitionings)
    parts = sorted(geo_model.partitionings, key=len)
    confidence = Confidence(parts, Hierarchy(parts).parents if len(parts) > 1 else None, **settings)
    calibration = load_calibration(geo_model, cli.temperatures_file(FLAGS.temperatures))
    weights, distance_temperature = load_distance_events(FLAGS.model_dir, parts[-1])
    if weights is None:
        weights = WithinWeights.from_means(parts[-1], FLAGS.centers)
        print(f"no distance weights W_R in {FLAGS.model_dir}: P(error <= R) and R_p take each cell's photos to lie "
              "at its mean (the cell-mean approximation; python -m geoest.within_weights writes W_R)", file=sys.stderr)
    path = export_saved_model(geo_model, FLAGS.export_dir, top_k=FLAGS.top_k, centers=FLAGS.centers,
                              confidence=confidence, calibration=calibration, within_weights=weights,
                              distance_temperature=distance_temperature, raw_probabilities=FLAGS.raw_probabilities)
    cap_km = settings["max_resolution_km"]
    what = (f"capped at {cap_km:g} km: lat, lon, cell and regions of areas at least that wide" if cap_km else
            f"lat, lon, top cells per {', '.join(p.name for p in parts)} and hierarchy, regions")
    if weights is not None:
        what += (f"; P(error <= R) and the quantile R_p from the {weights.source}"
                 + ("" if distance_temperature is None else f", distance temperature {distance_temperature:.2f}"))
    print(f"SavedModel of {geo_model.path} ({'calibrated' if calibration else 'uncalibrated'}) -> {path} "
          f"(signature serving_default: image_bytes -> {what})")


if __name__ == "__main__":
    cli.run(main)
