r"""Scene statistics of a meta CSV (§4): images per concept and each ISN's training-set size.

    python -m geoest.scene_stats --meta_csv=mp16_places365.csv [--tau_s=0.3]

Prints one JSON object: {"count": N, "tau_s": 0.3, "images_per_concept": {"indoor": n, ...}
(by S3_Label), "isn_images": {"indoor": n, ...} (images with Prob_<concept> > tau_s)}.
"""
import json

from absl import flags

from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.scene import columns, statistics

flags.DEFINE_string("meta_csv", None, "CSV in the Im2GPS meta format (S3_Label, Prob_* columns).")
flags.DEFINE_float("tau_s", statistics.TAU_S, "Concept-probability threshold of the ISNs (§4).")
flags.mark_flag_as_required("meta_csv")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    rows = read_meta_csv(FLAGS.meta_csv, author=False, probs365=False,
                         required=(columns.LABEL_COLUMNS[0],) + columns.PROB_COLUMNS)
    print(json.dumps(statistics.scene_statistics(rows.scene_labels[:, 0], rows.probs3, tau_s=FLAGS.tau_s)))


if __name__ == "__main__":
    cli.run(main)
