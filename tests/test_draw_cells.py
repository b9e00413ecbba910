"""tools/draw_cells.py and the GeoJSON cell polygons it writes."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.path import Path

import inference_helpers as helpers
from geoest.geo import Partitioning
from geoest.inference import geojson

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "draw_cells.py"


def _inside(ring, lat, lon):
    ring = np.asarray(ring)
    lon = lon + 360 * np.round((ring[:-1, 0].mean() - lon) / 360)   # the ring may be unwrapped past ±180
    return Path(ring).contains_point((lon, lat))


def test_rings_follow_the_cells_and_hold_their_centres():
    lat, lon = helpers.clustered_points(2000, seed=1)
    # add photos around the antimeridian (Fiji) so some cells border it
    rng = np.random.default_rng(0)
    lat = np.concatenate([lat, -17.8 + rng.normal(size=300) * 2])
    lon = np.concatenate([lon, (180 + rng.normal(size=300) * 2 + 180) % 360 - 180])
    p = Partitioning.build(lat, lon, tau_min=5, tau_max=60, name="demo")
    features = geojson.cell_features(p, points_per_edge=6)
    assert len(features) == len(p)
    polygons = p.polygons()
    geometric = p.geometric_centers()
    on_antimeridian = 0
    for k, feature in enumerate(features):
        ring = feature["geometry"]["coordinates"][0]
        polar = np.abs(np.array(ring)[:, 1]).max() > 89.9999   # a pole vertex is drawn as two points
        assert ring[0] == ring[-1] and len(ring) == 4 * 6 + 1 + polar
        assert feature["properties"]["cell"] == p.tokens[k] and feature["properties"]["images"] == p.counts[k]
        lons = np.array(ring)[:, 0]
        assert lons.max() - lons.min() < 180   # drawn as one piece
        on_antimeridian += np.abs(lons).max() > 179.9999   # S2 cells have an edge on lon 180
        assert _inside(ring, *geometric[k])
        if polar:
            continue
        corners = np.array(ring[:-1])[::6]   # every 6th point is a cell corner
        np.testing.assert_allclose(corners[:, 1], polygons[k][:, 0], atol=1e-5)
        np.testing.assert_allclose((corners[:, 0] - polygons[k][:, 1] + 180) % 360 - 180, 0, atol=1e-5)
    assert on_antimeridian > 0


def test_draw_cells_tool(tmp_path):
    p = helpers.partitionings(1500)[1]
    csv = tmp_path / "cells_5_150.csv"
    p.to_csv(csv)
    out = tmp_path / "maps"
    result = subprocess.run([sys.executable, str(TOOL), f"--partitionings={csv}", f"--output_dir={out}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    collection = json.loads((out / "cells_5_150.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == len(p)
    assert (out / "cells_5_150.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = subprocess.run([sys.executable, str(TOOL), f"--partitionings={tmp_path / 'missing.csv'}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "missing.csv" in result.stderr


@pytest.mark.shared_data
def test_real_coarse_partitioning(mp16_dir):
    p = Partitioning.from_csv(mp16_dir / "cells_50_5000.csv")
    features = geojson.cell_features(p, points_per_edge=2)
    assert len(features) == 3298
    spans = [np.ptp(np.array(f["geometry"]["coordinates"][0])[:, 0]) for f in features]
    assert max(spans) < 180
