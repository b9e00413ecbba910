"""Builds an adaptive S2 geo-cell partitioning from photo coordinates (§3.1, Table 1).

python -m geoest.create_partitioning --meta_csv=META.csv --tau_min=50 --tau_max=1000 \
    --output=cells_50_1000.csv [--lat_column=LAT --lon_column=LON --id_column=IMG_ID \
    --min_level=2 --max_level=30 --overwrite]

The output is never the meta CSV; an existing output is replaced only when it is what this run
writes, or with --overwrite.
"""
import logging
import time

from absl import flags
from absl import logging as absl_logging

from geoest import cli
from geoest.data.meta_csv import read_meta_csv
from geoest.files import check_output, write_deterministic
from geoest.geo import Partitioning
from geoest.scene.columns import ID_COLUMN, LAT_COLUMN, LON_COLUMN

FLAGS = flags.FLAGS
flags.DEFINE_string("meta_csv", None, "CSV with one row per photo (IMG_ID,LAT,LON,...).")
flags.DEFINE_string("output", None, "Partitioning CSV to write.")
flags.DEFINE_integer("tau_min", 50, "Cells with <= tau_min photos are dropped (§3.1).")
flags.DEFINE_integer("tau_max", 1000, "Cells with > tau_max photos are split (§3.1).")
flags.DEFINE_string("lat_column", LAT_COLUMN, "Latitude column (degrees).")
flags.DEFINE_string("lon_column", LON_COLUMN, "Longitude column (degrees).")
flags.DEFINE_string("id_column", ID_COLUMN, "Photo id column.")
flags.DEFINE_integer("min_level", 2, "S2 level to start the subdivision at.")
flags.DEFINE_integer("max_level", 30, "S2 level to stop splitting at.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output that holds another partitioning.")
flags.mark_flags_as_required(["meta_csv", "output"])


def main(argv):
    del argv
    logging.getLogger("geoest").setLevel(logging.INFO)
    start = time.perf_counter()
    output = check_output(FLAGS.output, inputs=[FLAGS.meta_csv])
    meta = read_meta_csv(FLAGS.meta_csv, id_column=FLAGS.id_column, lat_column=FLAGS.lat_column,
                         lon_column=FLAGS.lon_column, scene=False, author=False)
    lat, lon = meta.lat_deg, meta.lon_deg
    absl_logging.info("read %d photos from %s in %.1f s", len(lat), FLAGS.meta_csv,
                      time.perf_counter() - start)
    p = Partitioning.build(lat, lon, tau_min=FLAGS.tau_min, tau_max=FLAGS.tau_max,
                           min_level=FLAGS.min_level, max_level=FLAGS.max_level,
                           source=FLAGS.meta_csv)
    write_deterministic(output, p.to_csv, overwrite=FLAGS.overwrite)
    levels = p.levels
    print(f"{FLAGS.output}: {len(p)} cells (levels {levels.min()}-{levels.max()}) holding "
          f"{p.counts.sum()} of {len(lat)} photos; {len(lat) - p.counts.sum()} photos in cells "
          f"with <= {FLAGS.tau_min} photos belong to no class; "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run(main)
