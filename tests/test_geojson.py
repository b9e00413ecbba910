"""GeoJSON of S2 cells: rings follow the cells' geodesic edges, close, keep one piece across the
antimeridian, and a written file is a whole FeatureCollection."""
import json

import numpy as np
import s2geometry as s2

from geoest.geo import great_circle_km, s2cell
from geoest.inference import geojson


def _cell(lat_deg, lon_deg, level):
    cell_id = s2.S2CellId(s2.S2LatLng.FromDegrees(lat_deg, lon_deg)).parent(level)
    cell = s2.S2Cell(cell_id)
    vertices = np.array([[s2.S2LatLng(cell.GetVertex(k)).lat().degrees(), s2.S2LatLng(cell.GetVertex(k)).lng().degrees()]
                         for k in range(4)])
    return cell_id, vertices


def _unit(lat_deg, lon_deg):
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def test_ring_is_closed_and_passes_through_the_corners_along_the_edges():
    cell_id, vertices = _cell(48.85, 2.35, 6)
    ring = np.array(geojson.cell_ring(vertices, points_per_edge=5))
    assert ring.shape == (4 * 5 + 1, 2) and (ring[0] == ring[-1]).all()
    np.testing.assert_allclose(ring[[0, 5, 10, 15], ::-1], vertices, atol=1e-6)        # corners, [lon, lat]
    center = s2.S2LatLng(cell_id.ToPoint())
    corner_km = great_circle_km(center.lat().degrees(), center.lng().degrees(), vertices[:, 0], vertices[:, 1])
    edge_km = great_circle_km(center.lat().degrees(), center.lng().degrees(), ring[:, 1], ring[:, 0])
    assert edge_km.max() <= corner_km.max() + 1e-6         # the sampled edges lie on the cell's border
    xyz = _unit(ring[:, 1], ring[:, 0])
    for edge in range(4):                                   # each edge on the great circle of its corners
        a, b = xyz[5 * edge], xyz[5 * edge + 5]
        normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
        np.testing.assert_allclose(xyz[5 * edge:5 * edge + 6] @ normal, 0, atol=1e-7)
    assert len(geojson.cell_ring(vertices, points_per_edge=1)) == 5


def test_a_cell_across_the_antimeridian_is_one_piece():
    _, vertices = _cell(10.0, 179.99, 4)
    if np.ptp(vertices[:, 1]) < 180:     # draw a cell that straddles ±180° in the input longitudes
        _, vertices = _cell(10.0, -179.99, 3)
    ring = np.array(geojson.cell_ring(vertices))
    assert np.abs(np.diff(ring[:, 0])).max() < 10          # no jump across the whole map
    assert np.abs(ring[:, 0]).max() > 179


def test_token_features_and_the_written_collection(tmp_path):
    tokens = [s2cell.id_to_token(int(s2.S2CellId(s2.S2LatLng.FromDegrees(lat, lon)).parent(8).id()))
              for lat, lon in ((35.68, 139.69), (-33.87, 151.21))]
    features = geojson.token_features(tokens, properties=[{"p": 0.7}, {"p": 0.2}], points_per_edge=2)
    assert [f["properties"] for f in features] == [{"cell": tokens[0], "p": 0.7}, {"cell": tokens[1], "p": 0.2}]
    assert all(len(f["geometry"]["coordinates"][0]) == 9 for f in features)
    point = geojson.point_feature(35.681236789, 139.767125123, {"rank": 1})
    assert point["geometry"] == {"type": "Point", "coordinates": [139.767125, 35.681237]}
    path = tmp_path / "map.geojson"
    geojson.write(path, features + [point])
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["type"] == "FeatureCollection" and len(written["features"]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["map.geojson"]       # no temporary file left
