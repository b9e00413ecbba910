"""GeoJSON (RFC 7946) of S2 cells and of predictions, for any map viewer.

S2 cell edges are great-circle arcs; each edge is sampled at a few points so that large cells
keep their shape on a flat map. Rings crossing the antimeridian are unwrapped (longitudes may
run past ±180) so that viewers draw them as one piece rather than across the whole map.
"""
import json

import numpy as np

from geoest.files import atomic_path
from geoest.geo import s2cell
from geoest.geo.cell_outlines import cell_vertices, unit_vectors


def cell_ring(vertices, points_per_edge: int = 8) -> list:
    """A closed GeoJSON ring [[lon, lat], ...] of a cell's geodesic edges (a polar vertex gives two
    points, one at each neighbour's longitude, so its edges follow the meridians).

    Args:
      vertices: float [4, 2] (lat, lon) degrees, counter-clockwise (`Partitioning.polygons()`).
      points_per_edge: samples per edge (1 keeps the corners only).
    """
    vertices = np.asarray(vertices, np.float64)
    xyz = unit_vectors(vertices[:, 0], vertices[:, 1])
    t = np.arange(points_per_edge) / points_per_edge
    points = []
    for a, b in zip(xyz, np.roll(xyz, -1, axis=0)):
        angle = np.arccos(np.clip(a @ b, -1.0, 1.0))
        if angle < 1e-12:
            points.append(a[None])
            continue
        # spherical linear interpolation along the edge's great circle
        points.append((np.sin((1 - t) * angle)[:, None] * a + np.sin(t * angle)[:, None] * b) / np.sin(angle))
    points = np.concatenate(points)
    lat = np.degrees(np.arcsin(np.clip(points[:, 2], -1, 1)))
    lon = np.arctan2(points[:, 1], points[:, 0])
    # A pole has no longitude: draw a polar vertex as two points at the longitudes of its neighbours.
    pole = np.abs(points[:, 2]) > 1 - 1e-12
    if pole.any() and not pole.all():
        others = np.flatnonzero(~pole)
        rows = []
        for i in range(len(points)):
            if pole[i]:
                before = others[others < i][-1] if (others < i).any() else others[-1]
                after = others[others > i][0] if (others > i).any() else others[0]
                rows += [(lat[i], lon[before]), (lat[i], lon[after])]
            else:
                rows.append((lat[i], lon[i]))
        lat, lon = np.array(rows).T
    lon = np.unwrap(lon)
    lon = np.degrees(lon - 2 * np.pi * np.round(lon.mean() / (2 * np.pi)))
    ring = np.stack([lon, lat], axis=1).round(6).tolist()
    return ring + ring[:1]


def cell_features(partitioning, classes=None, properties=None, points_per_edge: int = 8) -> list:
    """Polygon features of a partitioning's cells.

    Args:
      partitioning: `geoest.geo.Partitioning`.
      classes: int [K] classes to draw (default: all cells).
      properties: optional list of K dicts merged into each feature's properties.
    Returns:
      list of GeoJSON Feature dicts with properties partitioning, class, cell (S2 token), images.
    """
    classes = np.arange(len(partitioning)) if classes is None else np.asarray(classes, np.int64)
    polygons = partitioning.polygons()
    features = []
    for i, c in enumerate(classes):
        props = {"partitioning": partitioning.name, "class": int(c), "cell": partitioning.tokens[c],
                 "images": int(partitioning.counts[c])}
        if properties is not None:
            props.update(properties[i])
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Polygon", "coordinates": [cell_ring(polygons[c], points_per_edge)]}})
    return features


def token_features(tokens, properties=None, points_per_edge: int = 8) -> list:
    """Polygon features of any S2 cells, given by token (regions and capped areas of predictions).

    Args:
      tokens: K S2 cell tokens.
      properties: optional list of K dicts, each feature's properties (the token is added as "cell").
    """
    corners = cell_vertices([s2cell.token_to_id(token) for token in tokens])
    features = []
    for i, token in enumerate(tokens):
        ring = cell_ring(corners[i], points_per_edge)
        props = {"cell": token, **(properties[i] if properties is not None else {})}
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return features


def point_feature(lat_deg: float, lon_deg: float, properties: dict) -> dict:
    return {"type": "Feature", "properties": properties,
            "geometry": {"type": "Point", "coordinates": [round(float(lon_deg), 6), round(float(lat_deg), 6)]}}


def write(path, features) -> None:
    """Write a FeatureCollection, whole or not at all (a temporary file, then a rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"type": "FeatureCollection", "features": features}, f)
