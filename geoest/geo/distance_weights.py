"""The distance weights W_R: P(error <= R) and the radius R_p, from the training photos of each cell.

For a photo whose fine distribution is p (f* of §3.4, or the finest partitioning alone) and whose
answer is the Class2GPS point of cell a,

    P(error <= R) = sum_c p(c) * W_R[a, c],

where W_R[a, c] is the share of cell c's training photos lying within R km of cell a's point:
if the true cell is c, the true location is one of c's photos. R_p is the smallest radius with
P(error <= R_p) >= p, read off the same weights on a grid of radii (log-linear in between).

The weights are computed once per partitioning from the training coordinates (`WithinWeights.build`):

  * radii up to `NEAR_MAX_KM` (750 km): a sparse matrix W_R per radius. The photos are grouped
    per cell into S2 bins about R / `BIN_FRACTION` (16) wide (each bin stands at its photos' mean), and the
    pairs (cell point, bin) within R come from a k-d tree over unit vectors (scipy);
  * wider radii: the bins of one coarse level (about `FAR_BIN_KM`), compared with the answered point
    when asked (a [B, bins] distance table) — nothing of size n x n is stored.

Without training coordinates (`WithinWeights.from_means`) every cell's photos are taken to be at
its mean: W_R[a, c] = 1 if cell c's mean lies within R km of cell a's point, else 0.

Units: degrees, km (sphere of radius 6371.0 km), probabilities in [0, 1].
"""
import hashlib
import io
import math
import pathlib

import numpy as np
from scipy import sparse, spatial

from geoest.errors import InputError
from geoest.files import atomic_path
from geoest.geo import s2cell
from geoest.geo.cell_outlines import unit_vectors
from geoest.geo.checks import check_masses, check_radii, plain_values
from geoest.geo.distance import EARTH_RADIUS_KM, THRESHOLDS_KM
from geoest.geo.regions import mass_key


HALF_CIRCUMFERENCE_KM = float(math.pi * EARTH_RADIUS_KM)   # every point lies within this of every other
NEAR_RADII_KM = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 350.0, 500.0, 750.0)
FAR_RADII_KM = (1000.0, 1500.0, 2000.0, 2500.0, 3500.0, 5000.0, 7500.0, 10000.0, 15000.0,
                HALF_CIRCUMFERENCE_KM)
NEAR_MAX_KM = 750.0
BIN_FRACTION = 16.0     # bins of the photos for radius R are about R / 16 wide
FAR_BIN_KM = 60.0       # the bins compared at query time for radii above NEAR_MAX_KM
FAR_CHUNK_PHOTOS = 64   # photos per [photos, bins] distance table
WITHIN_WEIGHTS_FILE = "within_weights.npz"
WITHIN_WEIGHTS_FORMAT = "geoest-within-weights-1"
# Mean edge of an S2 cell of level 0 (a face) in km; a level-k cell is about this / 2**k wide.
_FACE_EDGE_KM = EARTH_RADIUS_KM * math.pi / 2


def within_key(radius_km: float) -> str:
    """Output name of P(error <= R): 25 -> "p_within_25km", 2.5 -> "p_within_2_5km"."""
    return f"p_within_{radius_km:g}km".replace(".", "_")


def radius_key(p: float) -> str:
    """Output name of R_p: 0.5 -> "radius_km_50", 0.975 -> "radius_km_97_5"."""
    return "radius_km_" + mass_key(p)


def partitioning_digest(partitioning) -> str:
    """Digest of a partitioning's cells and Class2GPS points: weights belong to exactly these."""
    h = hashlib.sha256(np.ascontiguousarray(partitioning.cell_ids, np.uint64).tobytes())
    h.update(np.ascontiguousarray(partitioning.centers, np.float64).round(9).tobytes())
    return h.hexdigest()[:16]


def _chord(radius_km: float) -> float:
    return 2.0 * math.sin(min(radius_km / EARTH_RADIUS_KM, math.pi) / 2.0)


def _level_for(width_km: float) -> int:
    """The S2 level whose cells are about `width_km` wide (at most that, up to level 30)."""
    return int(np.clip(math.ceil(math.log2(_FACE_EDGE_KM / max(width_km, 1e-6))), 0, s2cell.MAX_LEVEL))


def _bins(leaves, classes, vectors, level: int):
    """Photos grouped by (S2 cell of `level`, class): (class int64 [G], count float64 [G], unit vector [G, 3])."""
    keys = s2cell.parent_ids(leaves, level) if level < s2cell.MAX_LEVEL else leaves
    order = np.lexsort((keys, classes))
    k, c = keys[order], classes[order]
    start = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (c[1:] != c[:-1])])
    count = np.diff(np.r_[start, len(k)]).astype(np.float64)
    mean = np.add.reduceat(vectors[order], start, axis=0)
    mean /= np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-300)
    return c[start].astype(np.int64), count, mean


class WithinWeights:
    """W_R for one partitioning: sparse near radii, coarse bins for far ones (see the module doc).

    Attributes:
      digest: `partitioning_digest` of the partitioning the weights were built for.
      points: float64 [n, 2] Class2GPS [lat, lon] of each cell (the answered points).
      near_radii_km: float64 [K_near]; near: list of scipy.sparse.csr_matrix [n, n] W_R.
      far_radii_km: float64 [K_far]; bin_class int64 [G], bin_share float64 [G] (share of its
        cell's photos), bin_vectors float64 [G, 3].
      source: "photos" (training coordinates) or "means" (the cell-mean approximation).
    """

    def __init__(self, digest, points, near_radii_km, near, far_radii_km, bin_class, bin_share, bin_vectors,
                 source: str):
        self.digest = str(digest)
        self.points = np.asarray(points, np.float64).reshape(-1, 2)
        self.near_radii_km = np.asarray(near_radii_km, np.float64).ravel()
        self.near = list(near)
        self.far_radii_km = np.asarray(far_radii_km, np.float64).ravel()
        self.bin_class = np.asarray(bin_class, np.int64).ravel()
        self.bin_share = np.asarray(bin_share, np.float64).ravel()
        self.bin_vectors = np.asarray(bin_vectors, np.float64).reshape(-1, 3)
        self.source = source
        self._point_vectors = unit_vectors(self.points[:, 0], self.points[:, 1])

    @property
    def num_cells(self) -> int:
        return len(self.points)

    @property
    def radii_km(self) -> np.ndarray:
        """float64 [K] every radius with weights, increasing."""
        return np.concatenate([self.near_radii_km, self.far_radii_km])

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    def build(cls, partitioning, lat_deg, lon_deg, centers: str = "mean", near_radii_km=NEAR_RADII_KM,
              far_radii_km=FAR_RADII_KM, chunk_cells: int = 512) -> "WithinWeights":
        """Weights from the training coordinates (vectorised: S2 bins and a k-d tree, no loop over photos).

        Args:
          partitioning: a `geoest.geo.Partitioning` (the finest one of a hierarchy).
          lat_deg, lon_deg: float [N] training photo coordinates, degrees. Photos in no cell are ignored.
          centers: the Class2GPS points answered ("mean" or "geometric").
          near_radii_km, far_radii_km: radii with a sparse matrix, radii compared at query time.
          chunk_cells: cells per k-d tree query (bounds the memory of one query).
        """
        classes = partitioning.assign(lat_deg, lon_deg)
        inside = classes >= 0
        lat = np.asarray(lat_deg, np.float64).ravel()[inside]
        lon = np.asarray(lon_deg, np.float64).ravel()[inside]
        classes = classes[inside]
        n = len(partitioning)
        per_cell = np.bincount(classes, minlength=n).astype(np.float64)
        if not (per_cell > 0).any():
            raise InputError("training coordinates: no photo lies in a cell of the partitioning "
                             f"{partitioning.name}")
        leaves = s2cell.leaf_ids(lat, lon)
        vectors = unit_vectors(lat, lon)
        points = np.asarray(partitioning.class2gps(centers), np.float64)
        point_vectors = unit_vectors(points[:, 0], points[:, 1])
        point_tree = None
        near = []
        for radius in sorted(float(r) for r in near_radii_km):
            bin_class, count, mean = _bins(leaves, classes, vectors, _level_for(radius / BIN_FRACTION))
            share = count / np.maximum(per_cell[bin_class], 1.0)
            tree = spatial.cKDTree(mean)
            if point_tree is None:
                point_tree = [(s, spatial.cKDTree(point_vectors[s:s + chunk_cells]))
                              for s in range(0, n, chunk_cells)]
            rows, cols, vals = [], [], []
            for start, chunk in point_tree:
                pairs = chunk.sparse_distance_matrix(tree, _chord(radius), output_type="ndarray")
                rows.append(pairs["i"].astype(np.int64) + start)
                cols.append(bin_class[pairs["j"]])
                vals.append(share[pairs["j"]])
            matrix = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                       shape=(n, n)).tocsr()
            matrix.sum_duplicates()
            near.append(matrix.astype(np.float32))
        bin_class, count, mean = _bins(leaves, classes, vectors, _level_for(FAR_BIN_KM))
        share = count / np.maximum(per_cell[bin_class], 1.0)
        return cls(partitioning_digest(partitioning), points, sorted(near_radii_km), near,
                   sorted(far_radii_km), bin_class, share, mean, "photos")

    @classmethod
    def from_means(cls, partitioning, centers: str = "mean", radii_km=NEAR_RADII_KM + FAR_RADII_KM):
        """The cell-mean approximation: each cell's photos all at its mean (no training coordinates;
        the caller says so)."""
        means = np.asarray(partitioning.centers, np.float64)
        n = len(partitioning)
        return cls(partitioning_digest(partitioning), partitioning.class2gps(centers), [], [], sorted(radii_km),
                   np.arange(n), np.ones(n), unit_vectors(means[:, 0], means[:, 1]), "means")

    # -- storing ---------------------------------------------------------------------------------------
    def save(self, path) -> pathlib.Path:
        """Writes the weights to `path` (a .npz file, or a folder: WITHIN_WEIGHTS_FILE inside), whole or not at all."""

        path = pathlib.Path(path)
        if path.is_dir():
            path = path / WITHIN_WEIGHTS_FILE
        arrays = {"format": np.array(WITHIN_WEIGHTS_FORMAT), "digest": np.array(self.digest),
                  "source": np.array(self.source),
                  "points": self.points, "near_radii_km": self.near_radii_km, "far_radii_km": self.far_radii_km,
                  "bin_class": self.bin_class, "bin_share": self.bin_share, "bin_vectors": self.bin_vectors}
        for k, m in enumerate(self.near):
            arrays[f"near{k}_indptr"], arrays[f"near{k}_indices"], arrays[f"near{k}_data"] = (
                m.indptr, m.indices, m.data)
        with atomic_path(path) as tmp:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            tmp.write_bytes(buffer.getvalue())
        return path

    @classmethod
    def load(cls, path, partitioning=None) -> "WithinWeights":
        """Reads weights written by `save`; with `partitioning`, refuses weights built for other cells."""

        path = pathlib.Path(path)
        if path.is_dir():
            path = path / WITHIN_WEIGHTS_FILE
        try:
            data = np.load(path, allow_pickle=False)
            if str(data["format"]) != WITHIN_WEIGHTS_FORMAT:
                raise KeyError("format")
            n = len(data["points"])
            near = [sparse.csr_matrix((data[f"near{k}_data"], data[f"near{k}_indices"], data[f"near{k}_indptr"]),
                                      shape=(n, n)) for k in range(len(data["near_radii_km"]))]
            out = cls(str(data["digest"]), data["points"], data["near_radii_km"], near, data["far_radii_km"],
                      data["bin_class"], data["bin_share"], data["bin_vectors"], str(data["source"]))
        except FileNotFoundError:
            raise InputError(f"{path}: no distance weights W_R there (python -m geoest.within_weights "
                             "writes them from the training coordinates)") from None
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"{path}: not a distance-weights file written by geoest ({err})") from None
        if partitioning is not None and out.digest != partitioning_digest(partitioning):
            raise InputError(f"{path}: distance weights of other cells than the partitioning "
                             f"{partitioning.name} ({len(partitioning)} cells; the weights have {out.num_cells})")
        return out

    # -- answering -------------------------------------------------------------------------------------
    def within(self, probs_fine, predicted, radii_km=None, max_resolution_km=None) -> np.ndarray:
        """P(error <= R) of each photo for each radius.

        Args:
          probs_fine: float [B, n] the fine distributions (rows are normalised here).
          predicted: int [B] the answered cell a of each photo (its point is the answer).
          radii_km: float [K] radii; default `radii_km`. A radius between two with weights is read
            log-linearly between them; below the smallest, it is scaled down as the area (R^2).
          max_resolution_km: the resolution cap K: no statement finer than K km, so radii below K
            give NaN (not answered).
        Returns:
          float64 [B, K] in [0, 1] (NaN below the cap), non-decreasing along K.
        """
        probs = np.asarray(probs_fine, np.float64)
        probs = probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-300)
        predicted = np.asarray(predicted, np.int64).ravel()
        grid = self.radii_km
        table = self._on_grid(probs, predicted)
        radii = grid if radii_km is None else np.asarray(check_radii(radii_km))
        out = table if radii_km is None else _interpolate(grid, table, radii)
        if max_resolution_km is not None:
            out = np.where(radii[None, :] < float(max_resolution_km), np.nan, out)
        return out

    def _on_grid(self, probs, predicted) -> np.ndarray:
        """float64 [B, K] P(error <= R) at every radius with weights, made non-decreasing."""
        columns = [np.asarray(m[predicted].multiply(probs).sum(axis=-1)).ravel() for m in self.near]
        if len(self.far_radii_km):
            far = np.zeros((len(probs), len(self.far_radii_km)))
            dots_min = np.cos(np.minimum(self.far_radii_km, HALF_CIRCUMFERENCE_KM) / EARTH_RADIUS_KM)
            for start in range(0, len(probs), FAR_CHUNK_PHOTOS):          # [chunk, G] at a time
                rows = slice(start, start + FAR_CHUNK_PHOTOS)
                dots = self._point_vectors[predicted[rows]] @ self.bin_vectors.T
                mass = probs[rows][:, self.bin_class] * self.bin_share[None, :]
                for k, threshold in enumerate(dots_min):
                    far[rows, k] = np.where(dots >= threshold - 1e-12, mass, 0.0).sum(axis=-1)
            columns.extend(far.T)
        table = np.maximum.accumulate(np.clip(np.stack(columns, axis=-1), 0.0, 1.0), axis=-1)
        table[~np.isfinite(probs).all(axis=-1)] = np.nan          # a photo whose probabilities hold NaN
        return table

    def radius(self, probs_fine, predicted, masses, max_resolution_km=None) -> np.ndarray:
        """R_p: the smallest radius around the answered point with P(error <= R_p) >= p.

        Args:
          probs_fine: float [B, n]; predicted: int [B]; masses: p values in (0, 1).
          max_resolution_km: the resolution cap K: R_p is never below K (a wider circle holds at
            least as much, so P(error <= R_p) >= p still holds).
        Returns:
          float64 [B, len(masses)] km, read log-linearly between the radii with weights; NaN for a
          row of probs_fine holding NaN (the caller reports and skips it).
        """
        masses = check_masses(plain_values(masses))
        probs = np.asarray(probs_fine, np.float64)
        probs = probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-300)
        table = self._on_grid(probs, np.asarray(predicted, np.int64).ravel())
        out = quantile_radius(self.radii_km, table, masses)
        out[~np.isfinite(table).all(axis=-1)] = np.nan      # a photo whose probabilities hold NaN
        return out if max_resolution_km is None else np.maximum(out, float(max_resolution_km))


    # -- TensorFlow, for the SavedModel ---------------------------------------------------------------
    def outputs_tf(self, probs_fine, predicted, radii_km=THRESHOLDS_KM, masses=(0.5, 0.9),
                   max_resolution_km=None) -> dict:
        """`within` and `radius` in TensorFlow (graph-safe, W_R as constants), for the serving signature.

        Args:
          probs_fine: float tensor [B, n] the fine distributions (normalised here).
          predicted: int tensor [B] the answered fine cells.
          radii_km: radii R of the P(error <= R) outputs; masses: p of the R_p outputs.
          max_resolution_km: the resolution cap K, as in `within` and `radius`.
        Returns:
          {within_key(R): float64 [B] (NaN below the cap), radius_key(p): float64 [B] km (never below
          the cap)}; NaN for a row of probs_fine holding NaN.
        """
        import tensorflow as tf

        radii = check_radii(radii_km)
        masses = check_masses(plain_values(masses))
        probs = tf.cast(probs_fine, tf.float64)
        probs = probs / tf.maximum(tf.reduce_sum(probs, axis=-1, keepdims=True), 1e-300)
        predicted = tf.cast(tf.reshape(predicted, [-1]), tf.int64)
        table = self._on_grid_tf(probs, predicted)
        grid = self.radii_km
        finite = tf.reduce_all(tf.math.is_finite(probs), axis=-1)
        nan = tf.constant(np.nan, tf.float64)
        out = {}
        within = _interpolate_tf(grid, table, radii)
        for k, radius in enumerate(radii):
            column = tf.where(finite, within[:, k], nan)
            if max_resolution_km is not None and radius < float(max_resolution_km):
                column = tf.fill(tf.shape(column), nan)
            out[within_key(radius)] = column
        quantiles = _quantile_radius_tf(grid, table, masses)
        for j, p in enumerate(masses):
            column = quantiles[:, j]
            if max_resolution_km is not None:
                column = tf.maximum(column, float(max_resolution_km))
            out[radius_key(p)] = tf.where(finite, column, nan)
        return out

    def _on_grid_tf(self, probs, predicted):
        """`_on_grid` in TensorFlow: float64 [B, K] P(error <= R) at every radius with weights."""
        import tensorflow as tf

        batch = tf.shape(probs)[0]
        columns = []
        for m in self.near:     # the rows of W_R of the answered cells: a ragged gather (int32, float32 constants)
            splits = tf.constant(m.indptr.astype(np.int32))
            cols = tf.gather(tf.RaggedTensor.from_row_splits(tf.constant(m.indices.astype(np.int32)), splits,
                                                             validate=False), predicted)
            vals = tf.gather(tf.RaggedTensor.from_row_splits(tf.constant(m.data.astype(np.float32)), splits,
                                                             validate=False), predicted)
            rows = cols.value_rowids()
            mass = (tf.gather_nd(probs, tf.stack([rows, cols.flat_values], axis=-1))
                    * tf.cast(vals.flat_values, tf.float64))
            columns.append(tf.math.unsorted_segment_sum(mass, rows, batch))
        if len(self.far_radii_km):
            dots = tf.matmul(tf.gather(tf.constant(self._point_vectors), predicted),
                             tf.constant(self.bin_vectors), transpose_b=True)          # [B, G]
            mass = tf.gather(probs, tf.constant(self.bin_class), axis=1) * tf.constant(self.bin_share)[None, :]
            dots_min = np.cos(np.minimum(self.far_radii_km, HALF_CIRCUMFERENCE_KM) / EARTH_RADIUS_KM)
            for threshold in dots_min:
                columns.append(tf.reduce_sum(tf.where(dots >= threshold - 1e-12, mass, tf.zeros_like(mass)), axis=-1))
        running, out = None, []
        for column in columns:             # clipped to [0, 1] and made non-decreasing along R
            column = tf.clip_by_value(column, 0.0, 1.0)
            running = column if running is None else tf.maximum(running, column)
            out.append(running)
        return tf.stack(out, axis=-1)


def _interpolate_tf(grid, table, radii):
    """`_interpolate` in TensorFlow: float64 [B, len(radii)]."""
    import tensorflow as tf

    log_grid = np.log(grid)
    out = []
    for r in radii:
        if r <= grid[0]:
            out.append(table[:, 0] * (r / grid[0]) ** 2)
            continue
        j = min(int(np.searchsorted(grid, r)), len(grid) - 1)
        if grid[j] == r or r >= grid[-1]:
            out.append(table[:, j])
            continue
        t = (math.log(r) - log_grid[j - 1]) / (log_grid[j] - log_grid[j - 1])
        out.append((1 - t) * table[:, j - 1] + t * table[:, j])
    return tf.stack(out, axis=-1)


def _quantile_radius_tf(grid_km, table, masses):
    """`quantile_radius` in TensorFlow: float64 [B, len(masses)] km."""
    import tensorflow as tf

    grid = tf.constant(np.asarray(grid_km, np.float64))
    log_grid = tf.math.log(grid)
    out = []
    for p in masses:
        j = tf.minimum(tf.reduce_sum(tf.cast(table < p, tf.int64), axis=-1), len(grid_km) - 1)
        below_j = tf.maximum(j - 1, 0)
        hi_p = tf.gather(table, j, batch_dims=1)
        lo_p = tf.where(j > 0, tf.gather(table, below_j, batch_dims=1), tf.zeros_like(hi_p))
        t = tf.math.divide_no_nan(p - lo_p, hi_p - lo_p)
        t = tf.where(tf.equal(hi_p, lo_p), tf.ones_like(t), tf.clip_by_value(t, 0.0, 1.0))
        log_r = (1 - t) * tf.gather(log_grid, below_j) + t * tf.gather(log_grid, j)
        below = grid_km[0] * tf.sqrt(tf.clip_by_value(p / tf.maximum(hi_p, 1e-300), 0.0, 1.0))
        out.append(tf.where(tf.equal(j, 0), below, tf.exp(log_r)))
    return tf.stack(out, axis=-1)


def _interpolate(grid, table, radii) -> np.ndarray:
    """P at `radii` from P on `grid` ([B, K]): log-linear between grid radii, ~R^2 below the first."""
    log_grid = np.log(grid)
    out = np.empty((len(table), len(radii)))
    for k, r in enumerate(radii):
        if r <= grid[0]:
            out[:, k] = table[:, 0] * (r / grid[0]) ** 2
            continue
        j = min(int(np.searchsorted(grid, r)), len(grid) - 1)
        if grid[j] == r or r >= grid[-1]:
            out[:, k] = table[:, j]
            continue
        t = (math.log(r) - log_grid[j - 1]) / (log_grid[j] - log_grid[j - 1])
        out[:, k] = (1 - t) * table[:, j - 1] + t * table[:, j]
    return out


def quantile_radius(grid_km, table, masses) -> np.ndarray:
    """Smallest radius with P(error <= R) >= p, from P on a grid of radii (log-linear between them).

    Args:
      grid_km: float [K] increasing radii; table: float [B, K] non-decreasing P(error <= R) there.
      masses: p values.
    Returns:
      float64 [B, len(masses)] km (below the first radius: scaled as R^2; never above the last).
    """
    masses = check_masses(plain_values(masses))
    grid = np.asarray(grid_km, np.float64)
    table = np.asarray(table, np.float64)
    out = np.empty((len(table), len(masses)))
    rows = np.arange(len(table))
    for k, p in enumerate(masses):
        j = (table < p).sum(axis=-1)                            # first grid index with P >= p
        j = np.minimum(j, len(grid) - 1)
        hi_p = table[rows, j]
        lo_p = np.where(j > 0, table[rows, np.maximum(j - 1, 0)], 0.0)
        first = j == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.clip((p - lo_p) / (hi_p - lo_p), 0.0, 1.0)
            t = np.where(np.isfinite(t), t, 1.0)
            log_r = (1 - t) * np.log(grid[np.maximum(j - 1, 0)]) + t * np.log(grid[j])
            below = grid[0] * np.sqrt(np.clip(p / np.maximum(hi_p, 1e-300), 0.0, 1.0))
        out[:, k] = np.where(first, below, np.exp(log_r))
    return out


__all__ = ["FAR_RADII_KM", "HALF_CIRCUMFERENCE_KM", "NEAR_MAX_KM", "NEAR_RADII_KM", "WITHIN_WEIGHTS_FILE",
           "WITHIN_WEIGHTS_FORMAT", "WithinWeights", "partitioning_digest", "quantile_radius", "radius_key",
           "within_key"]
