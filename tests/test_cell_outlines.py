"""Outlines, centres and extents of S2 cells: unit vectors on the cell's edges, its vertices among them,
a face as wide as FACE_EXTENT_KM, and each cell's centre and extent against its children's."""
import numpy as np
import pytest

from geoest.geo import great_circle_km, s2cell
from geoest.geo.cell_outlines import (FACE_EXTENT_KM, POINTS_PER_EDGE, cell_centers, cell_outlines, cell_vertices,
                                      extents_km, unit_vectors)
from geoest.geo.distance import EARTH_RADIUS_KM

FACES = np.array([(2 * k + 1) << 60 for k in range(6)], np.uint64)


def test_unit_vectors_lie_on_the_sphere_at_the_coordinates():
    v = unit_vectors([0.0, 0.0, 90.0, -30.0], [0.0, 90.0, 0.0, 45.0])     # x, y, z (the pole), and one more
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0)
    np.testing.assert_allclose(v[:3], np.eye(3), atol=1e-15)
    np.testing.assert_allclose(np.degrees(np.arcsin(v[3, 2])), -30.0)


def test_outlines_are_unit_vectors_with_the_vertices_among_them():
    cells = s2cell.leaf_ids(np.array([48.86, -33.87]), np.array([2.35, 151.21]))
    cells = np.concatenate([s2cell.parent_ids(cells, 8), s2cell.parent_ids(cells, 2)])
    for points in (POINTS_PER_EDGE, 1, 7):
        outlines = cell_outlines(cells, points)
        assert outlines.shape == (len(cells), 4 * points, 3)
        np.testing.assert_allclose(np.linalg.norm(outlines, axis=-1), 1.0)
    coarse, fine = cell_outlines(cells), cell_outlines(cells, 16)
    np.testing.assert_allclose(coarse[:, ::POINTS_PER_EDGE], fine[:, ::16], atol=1e-12)   # the 4 vertices


def test_a_face_is_as_wide_as_face_extent():
    np.testing.assert_allclose(extents_km(cell_outlines(FACES)), FACE_EXTENT_KM, rtol=1e-12)
    assert FACE_EXTENT_KM == pytest.approx(EARTH_RADIUS_KM * np.radians(109.4712206), rel=1e-9)


def test_extent_is_the_largest_distance_and_halves_with_the_level():
    cells = s2cell.parent_ids(s2cell.leaf_ids(np.array([40.71]), np.array([-74.0])), 10)
    outline = cell_outlines(cells)[0]
    lat, lon = np.degrees(np.arcsin(outline[:, 2])), np.degrees(np.arctan2(outline[:, 1], outline[:, 0]))
    pairs = great_circle_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    assert extents_km(outline[None])[0] == pytest.approx(pairs.max(), rel=1e-6)
    children = s2cell.parent_ids(s2cell.leaf_ids(np.array([40.71]), np.array([-74.0])), 11)
    assert 0.4 < extents_km(cell_outlines(children))[0] / extents_km(outline[None])[0] < 0.6


def test_centers_lie_inside_their_cells():
    lat, lon = np.array([48.86, -33.87, 64.1]), np.array([2.35, 151.21, -21.9])
    for level in (3, 12):
        cells = s2cell.parent_ids(s2cell.leaf_ids(lat, lon), level)
        centers = cell_centers(cells)
        assert centers.shape == (3, 2)
        again = s2cell.parent_ids(s2cell.leaf_ids(centers[:, 0], centers[:, 1]), level)
        np.testing.assert_array_equal(again, cells)


def test_vertices_are_the_corners_of_the_cell_counter_clockwise():
    cells = s2cell.parent_ids(s2cell.leaf_ids(np.array([48.86, -33.87]), np.array([2.35, 151.21])), 9)
    corners = cell_vertices(cells)
    assert corners.shape == (2, 4, 2)
    xyz = unit_vectors(corners[..., 0], corners[..., 1])
    np.testing.assert_allclose(xyz, cell_outlines(cells)[:, ::POINTS_PER_EDGE], atol=1e-12)
    center = unit_vectors(*cell_centers(cells).T)
    for k in range(4):     # counter-clockwise seen from outside: each edge turns left around the centre
        assert (np.einsum("ij,ij->i", np.cross(xyz[:, k], xyz[:, (k + 1) % 4]), center) > 0).all()
