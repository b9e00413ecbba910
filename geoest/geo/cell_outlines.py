"""Outlines of S2 cells, their centres and their extents (diameters).

A cell's *extent* is its diameter: the largest distance between two points of its outline, in km on
the sphere of radius 6371.0 km; coordinates are in degrees.
"""
import numpy as np

from geoest.geo.distance import EARTH_RADIUS_KM

POINTS_PER_EDGE = 4
# An S2 face is the largest area a cap can fall back to: its diameter (opposite corners, 109.47°).
FACE_EXTENT_KM = float(EARTH_RADIUS_KM * np.arccos(-1.0 / 3.0))


def unit_vectors(lat_deg, lon_deg) -> np.ndarray:
    """float64 [..., 3] points on the unit sphere of coordinates in degrees."""
    lat, lon = np.radians(np.asarray(lat_deg, np.float64)), np.radians(np.asarray(lon_deg, np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def cell_vertices(cell_ids) -> np.ndarray:
    """float64 [n, 4, 2] [lat, lon] in degrees of the 4 vertices of S2 cells, counter-clockwise."""
    import s2geometry as s2

    ids = np.asarray(cell_ids, np.uint64).ravel()
    vertices = np.empty((len(ids), 4, 2))
    for k, cell_id in enumerate(ids.tolist()):
        cell = s2.S2Cell(s2.S2CellId(cell_id))
        for v in range(4):
            ll = s2.S2LatLng(cell.GetVertex(v))
            vertices[k, v] = ll.lat().degrees(), ll.lng().degrees()
    return vertices


def cell_outlines(cell_ids, points_per_edge: int = POINTS_PER_EDGE) -> np.ndarray:
    """Points along the edges of S2 cells, as unit vectors.

    Args:
      cell_ids: uint64 [n] S2 cell ids.
      points_per_edge: samples per geodesic edge (its first vertex included).
    Returns:
      float64 [n, 4 * points_per_edge, 3]; the 4 vertices are among the points.
    """
    lat_lon = cell_vertices(cell_ids)
    vertices = unit_vectors(lat_lon[..., 0], lat_lon[..., 1])
    t = np.arange(points_per_edge)[None, None, :, None] / points_per_edge
    edge = (1 - t) * vertices[:, :, None] + t * np.roll(vertices, -1, axis=1)[:, :, None]
    edge /= np.linalg.norm(edge, axis=-1, keepdims=True)   # back onto the great-circle arc
    return edge.reshape(len(lat_lon), -1, 3)


def cell_centers(cell_ids) -> np.ndarray:
    """float64 [n, 2] [lat, lon] of S2 cells' centres, degrees."""
    import s2geometry as s2

    out = np.empty((len(cell_ids), 2))
    for k, cell_id in enumerate(np.asarray(cell_ids, np.uint64).tolist()):
        ll = s2.S2CellId(cell_id).ToLatLng()
        out[k] = ll.lat().degrees(), ll.lng().degrees()
    return out


def extents_km(outlines) -> np.ndarray:
    """float64 [n] diameter of each outline: the largest distance between two of its points (km)."""
    outlines = np.asarray(outlines, np.float64)
    dots = np.einsum("nsd,ntd->nst", outlines, outlines).min(axis=(1, 2))
    return EARTH_RADIUS_KM * np.arccos(np.clip(dots, -1.0, 1.0))


__all__ = ["FACE_EXTENT_KM", "POINTS_PER_EDGE", "cell_centers", "cell_outlines", "extents_km", "unit_vectors"]
