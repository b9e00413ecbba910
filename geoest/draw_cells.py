"""Draw partitionings (§3.1) as GeoJSON S2 cell polygons and PNG world maps.

    python -m geoest.draw_cells --partitionings=cells_50_5000.csv,cells_50_1000.csv --output_dir=maps

writes maps/<name>.geojson (one polygon per cell with its class, S2 token and image count; opens
in any map viewer) and maps/<name>.png (cells coloured by images per cell).
"""
import pathlib

from absl import flags

from geoest import cli
from geoest.geo import read_partitionings
from geoest.inference import geojson
from geoest.inference.report import plot_cells

flags.DEFINE_list("partitionings", None, "Partitioning CSV files (comma-separated).", required=True)
flags.DEFINE_string("output_dir", "cell_maps", "Folder for <name>.geojson and <name>.png.")
flags.DEFINE_integer("points_per_edge", 8, "Samples along each geodesic cell edge.")
flags.DEFINE_bool("png", True, "Also draw a PNG world map per partitioning.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    output_dir = pathlib.Path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for partitioning in read_partitionings(FLAGS.partitionings):
        target = output_dir / f"{partitioning.name}.geojson"
        geojson.write(target, geojson.cell_features(partitioning, points_per_edge=FLAGS.points_per_edge))
        print(f"{partitioning.name}: {len(partitioning)} cells -> {target}")
        if FLAGS.png:
            plot_cells(partitioning, output_dir / f"{partitioning.name}.png")
            print(f"{partitioning.name}: map -> {output_dir / f'{partitioning.name}.png'}")


if __name__ == "__main__":
    cli.run(main)
