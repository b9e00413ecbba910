"""Write the distance weights W_R of a partitioning from its training coordinates (beyond the paper).

    python -m geoest.within_weights --meta_csv=mp16_train.csv \
        --partitioning=cells_50_1000.csv --output=DIR [--centers=mean]

W_R[a, c] is the share of cell c's training photos within R km of cell a's Class2GPS point
(`geoest.geo.distance_weights`); P(error <= R) of a photo is sum_c p(c) W_R[predicted, c]. Writes
DIR/within_weights.npz (DIR: the model dir, or the folder of the partitionings), whole or not at all,
and prints the stored radii and non-zeros. Give the finest partitioning of the hierarchy.
"""
import pathlib

from absl import flags

from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.errors import InputError
from geoest.geo import Partitioning
from geoest.geo.distance_weights import WithinWeights

flags.DEFINE_string("meta_csv", None, "Training meta CSV (IMG_ID,LAT,LON): the photos the cells were built from.")
flags.DEFINE_string("partitioning", None, "The finest partitioning CSV.")
flags.DEFINE_string("output", None, "Folder to write within_weights.npz into (model dir or partitionings folder).")
flags.DEFINE_enum("centers", "mean", ["mean", "geometric"], "Class2GPS points answered (§3.4).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    for name in ("meta_csv", "partitioning", "output"):
        if not getattr(FLAGS, name):
            raise InputError(f"--{name} is required")
    output = pathlib.Path(FLAGS.output)
    if not output.is_dir():
        raise InputError(f"--output={output}: not a folder")
    meta = read_meta_csv(FLAGS.meta_csv, scene=False, author=False)
    part = Partitioning.from_csv(FLAGS.partitioning)
    weights = WithinWeights.build(part, meta.lat_deg, meta.lon_deg, centers=FLAGS.centers)
    path = weights.save(output)
    near = ", ".join(f"{r:g} km: {m.nnz:,}" for r, m in zip(weights.near_radii_km, weights.near))
    print(f"{part.name}: {len(part)} cells; non-zeros per radius {near}; {len(weights.bin_class):,} bins for "
          f"radii above {weights.near_radii_km.max():g} km -> {path}")


if __name__ == "__main__":
    cli.run(main)
