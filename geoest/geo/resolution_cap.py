"""The resolution cap: no answer finer than K km, the cells replaced by the coarsest areas
(partitioning cells or S2 ancestors) whose extent is at least K.

Units: degrees for coordinates, km for distances; a cell's extent is its diameter
(`geoest.geo.cell_outlines`).
"""
import numpy as np

from geoest.errors import InputError
from geoest.geo import s2cell
from geoest.geo.cell_outlines import POINTS_PER_EDGE, cell_centers, cell_outlines, extents_km
from geoest.geo.checks import check_max_resolution


class ResolutionCap:
    """No answer finer than `max_resolution_km`: cells merged into areas at least that wide.

    The areas form a tree: the cells of every partitioning of the hierarchy plus the S2 ancestors
    of the coarsest cells up to the six faces. Walking down from the faces, an area is split into
    its children only when every child's extent is at least K; the areas where the walk stops
    are the *units*. Each finest cell belongs to exactly one unit, units never overlap, and every
    unit, and every area a capped answer names, has an extent of at least K. A unit's point is
    its Class2GPS mean when it is a cell of a partitioning, else its S2 centre. A capped answer
    keeps the predicted cell and names the unit holding it, with the unit's probability.

    Args:
      partitionings: `geoest.geo.Partitioning`s coarse to fine (a hierarchy, or one).
      max_resolution_km: K in km (0 < K <= FACE_EXTENT_KM).
      centers: "mean" (Class2GPS, §3.4) or "geometric" (S2 cell centres) for partitioning cells.
    Attributes:
      max_resolution_km: K.
      node_ids: uint64 [N] every area of the tree; node_centers float64 [N, 2] degrees;
        node_extent_km float64 [N]; node_outlines float64 [N, S, 3].
      node_of_level: list of int64 [n_k] the capped area answering for each cell of level k.
      tokens: S2 token of each node; unit_of_node: int64 [N] index into `units`, -1 for other nodes.
      unit_of_fine: int64 [n_fine] index into `units` of each finest cell's unit.
      units: int64 [U] node index of each unit.
    """

    def __init__(self, partitionings, max_resolution_km: float, centers: str = "mean",
                 points_per_edge: int = POINTS_PER_EDGE):
        self.max_resolution_km = check_max_resolution(max_resolution_km)
        parts = list(partitionings)
        coarse = parts[0].cell_ids
        coarse_levels = s2cell.cell_levels(coarse)
        ancestors = [s2cell.parent_ids(coarse[coarse_levels > level], level) for level in range(s2cell.MAX_LEVEL)]
        self.node_ids = np.unique(np.concatenate([p.cell_ids for p in parts] + ancestors)).astype(np.uint64)
        levels = s2cell.cell_levels(self.node_ids)
        n = len(self.node_ids)
        parent = np.full(n, -1, np.int64)
        for level in range(s2cell.MAX_LEVEL):           # the nearest ancestor in the tree wins
            finer = np.flatnonzero(levels > level)
            candidate = s2cell.parent_ids(self.node_ids[finer], level)
            at = np.minimum(np.searchsorted(self.node_ids, candidate), n - 1)
            found = self.node_ids[at] == candidate
            parent[finer[found]] = at[found]
        self.node_centers = cell_centers(self.node_ids)
        for p in parts:                                   # coarse to fine: the finest mean wins
            at = np.searchsorted(self.node_ids, p.cell_ids)
            self.node_centers[at] = p.class2gps(centers)
        self.node_outlines = cell_outlines(self.node_ids, points_per_edge)
        self.node_extent_km = extents_km(self.node_outlines)
        wide = self.node_extent_km >= self.max_resolution_km
        has_parent = parent >= 0
        children = np.bincount(parent[has_parent], minlength=n)
        wide_children = np.bincount(parent[has_parent & wide], minlength=n)
        splittable = (children > 0) & (wide_children == children)
        # first non-splittable area on the path from the face down to each node (-1: none yet)
        blocked = np.full(n, -1, np.int64)
        for level in range(s2cell.MAX_LEVEL + 1):
            at = np.flatnonzero(levels == level)
            above = np.where(has_parent[at], blocked[np.maximum(parent[at], 0)], -1)
            blocked[at] = np.where(above >= 0, above, np.where(splittable[at], -1, at))
        above = np.where(has_parent, blocked[np.maximum(parent, 0)], -1)
        self._cap = np.where(above >= 0, above, np.arange(n))      # the area answering for each node
        if not wide[self._cap].all():   # only a face narrower than K: check_max_resolution prevents it
            raise InputError(f"K={max_resolution_km}: wider than the S2 faces")
        self.node_of_level = [self._cap[np.searchsorted(self.node_ids, p.cell_ids)] for p in parts]
        unit_nodes = self.node_of_level[-1]
        self.units, self.unit_of_fine = np.unique(unit_nodes, return_inverse=True)
        self.units = self.units.astype(np.int64)
        self.unit_of_fine = self.unit_of_fine.astype(np.int64)
        self.tokens = [s2cell.id_to_token(c) for c in self.node_ids.tolist()]    # S2 token per node
        self.unit_of_node = np.full(n, -1, np.int64)                              # -1: not a unit
        self.unit_of_node[self.units] = np.arange(len(self.units))

    def unit_probabilities(self, probs_fine) -> np.ndarray:
        """float64 [B, U] the fine distribution [B, n_fine] summed into the units."""
        probs_fine = np.asarray(probs_fine, np.float64)
        batch, u = len(probs_fine), len(self.units)
        index = (np.arange(batch)[:, None] * u + self.unit_of_fine[None, :]).ravel()
        return np.bincount(index, weights=probs_fine.ravel(), minlength=batch * u).reshape(batch, u)


__all__ = ["ResolutionCap"]
