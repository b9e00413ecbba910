"""Export a trained model as a SavedModel for TF Serving or `tf.saved_model.load` (§3.4 inside).

    python -m geoest.export --model_dir=runs/base_M --export_dir=exported/base_M/1 [--top_k=5]

The signature `serving_default` takes `image_bytes` (tf.string [batch], encoded JPEG / PNG) and
returns `lat`, `lon` (the f* answer, or the only partitioning's) and, per output O (each
partitioning and "hierarchy"), O_lat, O_lon, O_class, O_probability, O_top_classes,
O_top_probabilities and O_top_cells (S2 tokens). Decoding, three crops, softmax mean, hierarchy
and Class2GPS are inside the graph.
"""
from absl import app, flags

from geoest.cli import clear_input_errors

flags.DEFINE_string("model_dir", None, "Trained model dir (best.keras and partitionings/).", required=True)
flags.DEFINE_string("export_dir", None, "New folder for the SavedModel (TF Serving: .../<name>/<version>).",
                    required=True)
flags.DEFINE_list("partitionings", [], "Partitioning CSVs (default: those in the model dir).")
flags.DEFINE_integer("top_k", 5, "Top cells returned per output.")
flags.DEFINE_enum("centers", "mean", ["mean", "geometric"], "Class2GPS: cell mean coordinate or S2 cell centre.")
FLAGS = flags.FLAGS


@clear_input_errors
def main(argv):
    del argv
    from geoest.inference.modeldir import load_geo_model
    from geoest.inference.serving import export_saved_model

    geo_model = load_geo_model(FLAGS.model_dir, FLAGS.partitionings)
    path = export_saved_model(geo_model, FLAGS.export_dir, top_k=FLAGS.top_k, centers=FLAGS.centers)
    print(f"SavedModel of {geo_model.path} -> {path} (signature serving_default: image_bytes -> lat, lon, "
          f"top cells per {', '.join(p.name for p in geo_model.partitionings)} and hierarchy)")


if __name__ == "__main__":
    app.run(main)
