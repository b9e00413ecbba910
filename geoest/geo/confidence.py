"""How sure is a guess: confidence regions, back-off to coarser levels and a resolution cap.

Everything here works on the distribution over the finest cells that §3.4 predicts (f*, or the
finest partitioning alone), in numpy and, where the exported SavedModel needs it, in TensorFlow:

  * the probability of the predicted cell, and for a mass p (0.5, 0.9) the smallest set of
    cells holding at least p of the mass (`region_sizes`): the region drawn on a map. The radius
    R_p a person reads is the quantile of the error (`geoest.geo.within`);
  * back-off (`back_off`): a photo whose predicted cell holds less than q answers at the finest
    level of the hierarchy (fine -> middle -> coarse) whose predicted cell holds at least q, or
    gives no answer; the coarser levels' probabilities are the fine distribution's marginals
    (`level_probabilities`), so a coarser cell never holds less than the cells inside it;
  * the resolution cap (`ResolutionCap`): no answer finer than K km, the cells replaced by the
    coarsest areas (partitioning cells or S2 ancestors) whose extent is at least K;
  * scores of a set of such answers: the expected calibration error of the
    predicted cell's probability, the accuracy-coverage curve (`calibration_bins`,
    `expected_calibration_error`, `accuracy_coverage`).

Units: degrees for coordinates, km for distances (sphere of radius 6371.0 km), probabilities in
[0, 1]. A cell's *extent* is its diameter: the largest distance between two points of its outline.
"""
import numpy as np

from geoest.errors import InputError
from geoest.geo import s2cell
from geoest.geo.distance import EARTH_RADIUS_KM, THRESHOLDS_KM

DEFAULT_MASSES = (0.5, 0.9)
POINTS_PER_EDGE = 4
# An S2 face is the largest area a cap can fall back to: its diameter (opposite corners, 109.47°).
FACE_EXTENT_KM = float(EARTH_RADIUS_KM * np.arccos(-1.0 / 3.0))
NO_ANSWER = -1


def level_names(n: int) -> tuple:
    """Names of the levels of a hierarchy of n partitionings, coarse to fine."""
    return {1: ("fine",), 2: ("coarse", "fine"), 3: ("coarse", "middle", "fine")}.get(
        n, tuple(f"level{k}" for k in range(n)))


# -- checks of user input -------------------------------------------------------------------------
def check_masses(masses, flag: str = "--region_mass") -> tuple:
    """Region masses p as a tuple of floats, each strictly inside (0, 1)."""
    out = []
    for p in masses:
        try:
            value = float(p)
        except (TypeError, ValueError):
            raise InputError(f"{flag}={p!r}: expected numbers strictly between 0 and 1") from None
        if not 0.0 < value < 1.0:
            raise InputError(f"{flag}={p!r}: a region's probability mass must lie strictly between 0 and 1")
        out.append(value)
    if not out:
        raise InputError(f"{flag}: give at least one probability mass, e.g. 0.5,0.9")
    return tuple(out)


def check_min_confidence(q, flag: str = "--min_confidence") -> float:
    """The back-off threshold q in [0, 1]."""
    try:
        value = float(q)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{flag}={q!r}: expected a probability in [0, 1]")
    return value


def check_max_resolution(km, flag: str = "--max_resolution_km") -> float:
    """The resolution cap K in km: > 0 and at most an S2 face's extent."""
    if km is None or not 0.0 < float(km) <= FACE_EXTENT_KM:
        raise InputError(f"{flag}={km!r}: expected a distance in km above 0 and at most "
                         f"{FACE_EXTENT_KM:,.0f} (an S2 face, the coarsest area there is)")
    return float(km)


def mass_key(p: float) -> str:
    """Name suffix of a region mass: 0.5 -> "50", 0.9 -> "90", 0.975 -> "97_5"."""
    return f"{100 * p:g}".replace(".", "_")


def finite_rows(probs) -> np.ndarray:
    """bool [B]: rows of a [B, n] probability array holding no NaN or infinity."""
    return np.isfinite(np.asarray(probs, np.float64)).all(axis=-1)


# -- cell geometry --------------------------------------------------------------------------------
def unit_vectors(lat_deg, lon_deg) -> np.ndarray:
    """float64 [..., 3] points on the unit sphere of coordinates in degrees."""
    lat, lon = np.radians(np.asarray(lat_deg, np.float64)), np.radians(np.asarray(lon_deg, np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def cell_outlines(cell_ids, points_per_edge: int = POINTS_PER_EDGE) -> np.ndarray:
    """Points along the edges of S2 cells, as unit vectors.

    Args:
      cell_ids: uint64 [n] S2 cell ids.
      points_per_edge: samples per geodesic edge (its first vertex included).
    Returns:
      float64 [n, 4 * points_per_edge, 3]; the 4 vertices are among the points.
    """
    import s2geometry as s2

    ids = np.asarray(cell_ids, np.uint64).ravel()
    vertices = np.empty((len(ids), 4, 3))
    for k, cell_id in enumerate(ids.tolist()):
        cell = s2.S2Cell(s2.S2CellId(cell_id))
        for v in range(4):
            ll = s2.S2LatLng(cell.GetVertex(v))
            vertices[k, v] = unit_vectors(ll.lat().degrees(), ll.lng().degrees())
    t = np.arange(points_per_edge)[None, None, :, None] / points_per_edge
    edge = (1 - t) * vertices[:, :, None] + t * np.roll(vertices, -1, axis=1)[:, :, None]
    edge /= np.linalg.norm(edge, axis=-1, keepdims=True)   # back onto the great-circle arc
    return edge.reshape(len(ids), -1, 3)


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


# -- regions --------------------------------------------------------------------------------------
def region_sizes(probs, mass: float):
    """Smallest set of cells holding at least `mass` of each distribution.

    Args:
      probs: float [B, n] non-negative (need not sum to 1: `mass` is a fraction of the row's sum).
      mass: p in (0, 1).
    Returns:
      (order int64 [B, n], sizes int64 [B]): cells by decreasing probability (ties: lower class
      first); the set is order[b, :sizes[b]]. Never more than the cells of non-zero probability.
    """
    probs = np.asarray(probs, np.float64)
    order = np.argsort(-probs, axis=-1, kind="stable")
    cumulative = np.cumsum(np.take_along_axis(probs, order, axis=-1), axis=-1)
    cumulative /= np.maximum(cumulative[:, -1:], 1e-300)
    sizes = (cumulative < mass - 1e-12).sum(axis=-1) + 1
    support = (probs > 0).sum(axis=-1)
    return order, np.clip(sizes, 1, np.maximum(support, 1)).astype(np.int64)


def in_region(order, sizes) -> np.ndarray:
    """bool [B, n]: whether each cell is in the region given by `region_sizes`."""
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :].repeat(len(order), 0), axis=-1)
    return rank < np.asarray(sizes)[:, None]


# -- back-off -------------------------------------------------------------------------------------
def level_probabilities(probs_fine, parents) -> list:
    """The fine distribution summed into the cells of every level of the hierarchy.

    Args:
      probs_fine: float [B, n_fine].
      parents: int [n_fine, L] class of each fine cell's ancestor per level, coarse to fine
        (`geoest.geo.Hierarchy.parents`; a single partitioning: arange(n_fine)[:, None]).
    Returns:
      list of L float64 arrays [B, n_k], coarse to fine (the last is probs_fine).
    """
    probs_fine = np.asarray(probs_fine, np.float64)
    batch = len(probs_fine)
    out = []
    for k in range(parents.shape[1]):
        n_k = int(parents[:, k].max()) + 1
        index = (np.arange(batch)[:, None] * n_k + parents[None, :, k]).ravel()
        out.append(np.bincount(index, weights=probs_fine.ravel(), minlength=batch * n_k).reshape(batch, n_k))
    return out


def back_off(level_probs, min_confidence: float):
    """Abstention and back-off: the finest level whose predicted cell holds at least q.

    Args:
      level_probs: list of float [B, n_k], coarse to fine (`level_probabilities`).
      min_confidence: q in [0, 1].
    Returns:
      (level int64 [B] index into level_probs, NO_ANSWER (-1) where no level reaches q;
       classes int64 [B] the predicted class at that level (-1 for no answer);
       probability float64 [B] its probability (0 for no answer)).
    """
    batch = len(level_probs[0])
    level = np.full(batch, NO_ANSWER, np.int64)
    classes = np.full(batch, -1, np.int64)
    probability = np.zeros(batch)
    for k, probs in enumerate(level_probs):           # coarse to fine: the finest wins
        best = np.argmax(probs, axis=-1)
        top = np.take_along_axis(probs, best[:, None], axis=-1)[:, 0]
        ok = top >= min_confidence
        level = np.where(ok, k, level)
        classes = np.where(ok, best, classes)
        probability = np.where(ok, top, probability)
    return level, classes, probability


# -- resolution cap -------------------------------------------------------------------------------
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
            raise InputError(f"--max_resolution_km={max_resolution_km}: wider than the S2 faces")
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


# -- answers for a batch --------------------------------------------------------------------------
class Confidence:
    """Confidence of §3.4's answers: regions, back-off and the resolution cap, for one hierarchy.

    Args:
      partitionings: coarse to fine, as the model's `Locator.partitionings`.
      parents: int [n_fine, L] (`Hierarchy.parents`), or None for a single partitioning.
      masses: region masses p (default 0.5 and 0.9).
      min_confidence: q for back-off (0: always the finest level).
      max_resolution_km: K for the cap, or None.
      centers: Class2GPS "mean" or "geometric".
    """

    def __init__(self, partitionings, parents=None, masses=DEFAULT_MASSES, min_confidence: float = 0.0,
                 max_resolution_km: float | None = None, centers: str = "mean"):
        self.partitionings = list(partitionings)
        fine = self.partitionings[-1]
        self.parents = (np.arange(len(fine))[:, None] if parents is None
                        else np.asarray(parents, np.int64))
        self.masses = check_masses(masses)
        self.min_confidence = check_min_confidence(min_confidence)
        self.levels = level_names(self.parents.shape[1])
        self.cap = None if max_resolution_km is None else ResolutionCap(self.partitionings, max_resolution_km,
                                                                         centers)
        if self.cap is None:
            self._centers = [np.asarray(p.class2gps(centers))
                             for p in self.partitionings]
            self._tokens = [p.tokens for p in self.partitionings]
            self.answer_tokens = self._tokens[-1]
            self.answer_centers = self._centers[-1]
        else:
            self.answer_tokens = [self.cap.tokens[u] for u in self.cap.units.tolist()]
            self.answer_centers = self.cap.node_centers[self.cap.units]

    def __call__(self, probs_fine, predicted=None) -> dict:
        """Answers for a batch of fine distributions (rows with NaN are the caller's to drop).

        Args:
          probs_fine: float [B, n_fine] (f* or the finest partitioning).
          predicted: int [B] the predicted fine cells (default: the most probable): with
            temperatures, the uncalibrated model's answer, whose calibrated probability is wanted.
        Returns:
          dict of numpy arrays [B]: "probability" of the predicted cell (capped: area) and its
          "lat", "lon", "cell" (S2 token); per mass p: f"region_size_{key}"
          and f"region_{key}" (a list of B lists of S2 tokens); back-off: "level" (name, "none" for no
          answer), "answer_cell", "answer_lat", "answer_lon", "answer_probability".
        """
        probs_fine = np.asarray(probs_fine, np.float64)
        probs = probs_fine if self.cap is None else self.cap.unit_probabilities(probs_fine)
        tokens = self.answer_tokens
        best = np.argmax(probs_fine, axis=-1) if predicted is None else np.asarray(predicted, np.int64)
        if self.cap is not None:     # the answer keeps its cell, made coarser: the area holding it
            best = self.cap.unit_of_fine[best]
        lat, lon = self.answer_centers[best, 0], self.answer_centers[best, 1]
        total = np.maximum(probs.sum(axis=-1), 1e-300)
        out = {"probability": probs[np.arange(len(probs)), best] / total, "lat": lat, "lon": lon,
               "cell": np.array([tokens[c] for c in best.tolist()], dtype=object)}
        for p in self.masses:
            order, sizes = region_sizes(probs, p)
            key = mass_key(p)
            out[f"region_size_{key}"] = sizes
            out[f"region_{key}"] = [[tokens[c] for c in row[:size].tolist()]
                                    for row, size in zip(order, sizes.tolist())]
        out.update(self.answer(probs_fine))
        return out

    def answer(self, probs_fine) -> dict:
        """Back-off answers (see `__call__`), capped when there is a cap."""
        level_probs = level_probabilities(probs_fine, self.parents)
        level, classes, probability = back_off(level_probs, self.min_confidence)
        names = np.array(list(self.levels) + ["none"], dtype=object)
        lat, lon = np.full(len(level), np.nan), np.full(len(level), np.nan)
        cells = np.array([""] * len(level), dtype=object)
        if self.cap is None:
            for k in range(len(self.levels)):
                rows = np.flatnonzero(level == k)
                lat[rows], lon[rows] = self._centers[k][classes[rows]].T
                cells[rows] = [self._tokens[k][c] for c in classes[rows].tolist()]
        else:
            unit_probs = self.cap.unit_probabilities(probs_fine)
            for k in range(len(self.levels)):
                rows = np.flatnonzero(level == k)
                nodes = self.cap.node_of_level[k][classes[rows]]
                lat[rows], lon[rows] = self.cap.node_centers[nodes].T
                cells[rows] = [self.cap.tokens[n] for n in nodes.tolist()]
                # an answer capped up to a unit holds that unit's mass
                as_unit = self.cap.unit_of_node[nodes]
                merged = as_unit >= 0
                probability[rows[merged]] = unit_probs[rows[merged], as_unit[merged]]
        return {"level": names[level], "answer_cell": cells, "answer_lat": lat, "answer_lon": lon,
                "answer_probability": probability}

    # -- TensorFlow, for the SavedModel ---------------------------------------------------------------
    def outputs_tf(self, probs_fine, predicted=None, region_cells: int = 100) -> dict:
        """`__call__` in TensorFlow (graph-safe), for the serving signature.

        Args:
          probs_fine: float tensor [B, n_fine].
          predicted: int tensor [B] the predicted fine cells (default: the most probable).
          region_cells: width K of the region token outputs (regions of more cells are cut there).
        Returns:
          dict of tensors: "lat", "lon" float64 [B] and "cell" string [B] of the predicted cell (capped:
          area), "probability" float64 [B]; per mass p: "region_size_<key>" int64 [B],
          "region_cells_<key>" string [B, K] (padded with "");
          back-off: "level" string [B] ("fine", ..., "none"), "answer_lat", "answer_lon" float64 [B]
          (NaN for no answer), "answer_cell" string [B], "answer_probability" float64 [B].
        """
        import tensorflow as tf

        fine_probs = tf.cast(probs_fine, tf.float64)
        probs = fine_probs
        if self.cap is not None:
            probs = tf.transpose(tf.math.unsorted_segment_sum(
                tf.transpose(fine_probs), tf.constant(self.cap.unit_of_fine), len(self.cap.units)))
        tokens = tf.constant(list(self.answer_tokens))
        centers = tf.constant(self.answer_centers, tf.float64)
        best = tf.argmax(fine_probs, axis=-1) if predicted is None else tf.cast(predicted, tf.int64)
        if self.cap is not None:
            best = tf.gather(tf.constant(self.cap.unit_of_fine), best)
        total = tf.maximum(tf.reduce_sum(probs, axis=-1), 1e-300)
        lat, lon = tf.gather(centers[:, 0], best), tf.gather(centers[:, 1], best)
        out = {"lat": lat, "lon": lon, "cell": tf.gather(tokens, best),
               "probability": tf.gather(probs, best, batch_dims=1) / total}
        order = tf.argsort(probs, axis=-1, direction="DESCENDING", stable=True)
        cumulative = tf.cumsum(tf.gather(probs, order, batch_dims=1), axis=-1) / total[:, None]
        support = tf.reduce_sum(tf.cast(probs > 0, tf.int64), axis=-1)
        width = min(region_cells, len(self.answer_tokens))
        for p in self.masses:
            key = mass_key(p)
            size = tf.reduce_sum(tf.cast(cumulative < p - 1e-12, tf.int64), axis=-1) + 1
            size = tf.clip_by_value(size, 1, tf.maximum(support, 1))
            out[f"region_size_{key}"] = size
            out[f"region_cells_{key}"] = tf.where(tf.range(width, dtype=tf.int64)[None, :] < size[:, None],
                                                  tf.gather(tokens, order[:, :width]), "")
        out.update(self._answer_tf(fine_probs))
        return out

    def _answer_tf(self, fine_probs) -> dict:
        import tensorflow as tf

        lats, lons, cells, probs_at, oks = [], [], [], [], []
        if self.cap is not None:
            unit_probs = tf.transpose(tf.math.unsorted_segment_sum(
                tf.transpose(fine_probs), tf.constant(self.cap.unit_of_fine), len(self.cap.units)))
        for k in range(self.parents.shape[1]):
            n_k = int(self.parents[:, k].max()) + 1
            level_probs = tf.transpose(tf.math.unsorted_segment_sum(
                tf.transpose(fine_probs), tf.constant(self.parents[:, k]), n_k))
            best = tf.argmax(level_probs, axis=-1)
            top = tf.gather(level_probs, best, batch_dims=1)
            if self.cap is None:
                centers = tf.constant(self._centers[k], tf.float64)
                lats.append(tf.gather(centers[:, 0], best))
                lons.append(tf.gather(centers[:, 1], best))
                cells.append(tf.gather(tf.constant(self._tokens[k]), best))
                probs_at.append(top)
            else:
                node = tf.gather(tf.constant(self.cap.node_of_level[k]), best)
                lats.append(tf.gather(tf.constant(self.cap.node_centers[:, 0]), node))
                lons.append(tf.gather(tf.constant(self.cap.node_centers[:, 1]), node))
                cells.append(tf.gather(tf.constant(self.cap.tokens), node))
                unit = tf.gather(tf.constant(self.cap.unit_of_node), node)
                probs_at.append(tf.where(unit >= 0, tf.gather(unit_probs, tf.maximum(unit, 0), batch_dims=1), top))
            oks.append(top >= self.min_confidence)
        level = tf.fill(tf.shape(fine_probs)[:1], tf.constant(NO_ANSWER, tf.int64))
        for k, ok in enumerate(oks):                    # coarse to fine: the finest wins
            level = tf.where(ok, tf.constant(k, tf.int64), level)
        answered = level >= 0
        at = tf.maximum(level, 0)[:, None]

        def pick(values, empty):
            return tf.where(answered, tf.gather(tf.stack(values, axis=1), at, batch_dims=1)[:, 0], empty)

        names = tf.constant(list(self.levels) + ["none"])
        return {"level": tf.gather(names, tf.where(answered, level, len(self.levels))),
                "answer_lat": pick(lats, tf.constant(np.nan, tf.float64)),
                "answer_lon": pick(lons, tf.constant(np.nan, tf.float64)),
                "answer_cell": pick(cells, ""), "answer_probability": pick(probs_at, tf.constant(0.0, tf.float64))}


# -- scores of many answers -----------------------------------------------------------------------
def calibration_bins(confidence, correct, bins: int = 15) -> dict:
    """Reliability of a predicted probability: equal-width bins over [0, 1].

    Args:
      confidence: float [N] predicted probability of the top cell.
      correct: bool [N] whether the top cell holds the true location.
    Returns:
      {"edges": [bins + 1], "count": int [bins], "confidence": mean per bin, "accuracy": per bin}
      (NaN for empty bins).
    """
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    table = calibration_bins(confidence, correct, bins)
    used = table["count"] > 0
    weights = table["count"][used] / max(table["count"].sum(), 1)
    return float(np.sum(weights * np.abs(table["accuracy"][used] - table["confidence"][used])))


def accuracy_coverage(dist_km, confidence, thresholds=THRESHOLDS_KM) -> dict:
    """Accuracy against the fraction of photos answered, most confident first.

    Args:
      dist_km: float [N] errors in km; confidence: float [N] (ties: the order given).
    Returns:
      {"coverage": float [N] (1/N .. 1), "accuracy": {t: float [N]} fraction within t km of the
      answered photos, "area": {t: float} the mean of that curve (area under it over coverage)}.
    """
    dist_km = np.asarray(dist_km, np.float64)
    order = np.argsort(-np.asarray(confidence, np.float64), kind="stable")
    answered = np.arange(1, len(order) + 1)
    out = {"coverage": answered / max(len(order), 1), "accuracy": {}, "area": {}}
    for t in thresholds:
        curve = np.cumsum(dist_km[order] <= t) / answered
        out["accuracy"][t] = curve
        out["area"][t] = float(curve.mean()) if len(curve) else float("nan")
    return out


def accuracy_of_most_confident(dist_km, confidence, fraction: float, km: float) -> float:
    """Accuracy within `km` of the `fraction` of photos with the highest confidence."""
    curve = accuracy_coverage(dist_km, confidence, (km,))
    k = max(1, int(round(fraction * len(curve["coverage"])))) - 1
    return float(curve["accuracy"][km][k])


__all__ = ["DEFAULT_MASSES", "FACE_EXTENT_KM", "NO_ANSWER", "Confidence", "ResolutionCap", "accuracy_coverage",
           "accuracy_of_most_confident", "back_off", "calibration_bins", "cell_outlines", "check_masses",
           "check_max_resolution", "check_min_confidence", "expected_calibration_error",
           "extents_km", "finite_rows", "in_region", "level_names",
           "level_probabilities", "mass_key", "region_sizes"]
