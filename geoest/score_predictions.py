"""Scores a results file in the published format (img_id,gt_lat,predicted_lat,gt_long,
predicted_long,great_circle_distance rows, then an empty line and the summary block; CRLF and LF
line ends alike) and prints one JSON object (Table 6; per scene, Table 4). A summary block that
disagrees with the rows is an error naming its line.

python -m geoest.score_predictions --predictions_csv=results.csv [--meta_csv=im2gps3k_places365.csv]
"""
import json

from absl import flags

from geoest import cli
from geoest.inference.scene_scores import score_file

FLAGS = flags.FLAGS
flags.DEFINE_string("predictions_csv", None, "Results CSV to score.")
flags.DEFINE_string("meta_csv", None, "Optional Im2GPS-format meta CSV (S3_Label) for the "
                    "indoor / natural / urban breakdown.")
flags.mark_flag_as_required("predictions_csv")


def main(argv):
    del argv
    scores = score_file(FLAGS.predictions_csv, FLAGS.meta_csv)
    print(json.dumps(scores, indent=2))


if __name__ == "__main__":
    cli.run(main)
