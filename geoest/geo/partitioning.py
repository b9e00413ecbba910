"""Adaptive S2 geo-cell partitionings (§3.1, Table 1): build, read, write, assign points.

A partitioning is a set of non-overlapping S2 cells, each holding a balanced number of
training photos; a photo's class is the index of the cell that contains it. The class order
is the row order of the partitioning CSV (`class_label` = row index), so a model trained on a
file keeps its meaning; `build()` writes cells in increasing S2 cell id order.
"""
import csv
import logging
import os
import pathlib
from typing import Optional, Sequence

import numpy as np

from geoest.errors import InputError
from geoest.geo import s2cell
from geoest.geo.cell_outlines import cell_centers, cell_vertices

log = logging.getLogger(__name__)

CSV_COLUMNS = ("class_label", "hex_id", "imgs_per_cell", "latitude_mean", "longitude_mean")
DEFAULT_MIN_LEVEL = 2
DEFAULT_MAX_LEVEL = 30
CENTERS = ("mean", "geometric")   # Class2GPS points (§3.4; "geometric": base-vgg_c of Table 6)


def validate_coordinates(lat_deg, lon_deg, source: str = "input", first_line: Optional[int] = None):
    """Checks coordinates and returns them as float64 arrays [N].

    Args:
      lat_deg, lon_deg: array-likes of the same length, degrees.
      source: what to name in an error (a file path, "input").
      first_line: the file line of element 0 in `source` (2 for a CSV's first data line); errors
        then name lines, otherwise 0-based rows.
    Raises:
      InputError naming the first offending row and value: shapes differ, NaN or infinite,
      latitude outside [-90, 90] or longitude outside [-180, 180].
    """
    try:
        lat = np.asarray(lat_deg, dtype=np.float64).ravel()
        lon = np.asarray(lon_deg, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise InputError(f"{source}: coordinates must be numbers in degrees ({err})") from None
    if lat.shape != lon.shape:
        raise InputError(f"{source}: {lat.size} latitudes but {lon.size} longitudes")
    for values, name, limit in ((lat, "latitude", 90.0), (lon, "longitude", 180.0)):
        bad = ~(np.abs(values) <= limit)  # also true for NaN
        if bad.any():
            row = int(np.argmax(bad))
            where = f"row {row}" if first_line is None else f"line {row + first_line}"
            raise InputError(f"{source}: {where}: {name} {float(values[row])!r} is not a "
                             f"number in [-{limit:g}, {limit:g}] degrees")
    return lat, lon


class Partitioning:
    """A set of disjoint S2 cells with their image counts and mean coordinates.

    Attributes:
      name: str, by default the CSV file's stem (e.g. "cells_50_1000"); model heads use it.
      cell_ids: np.uint64 [n], the S2 cell id of each class.
      counts: np.int64 [n], training images per cell.
      centers: np.float64 [n, 2], [lat, lon] mean of the cell's training images in degrees
        (Class2GPS, §3.4).
    """

    def __init__(self, cell_ids, counts, centers, name: str = "partitioning", source: str = "cells"):
        self.cell_ids = np.asarray(cell_ids, dtype=np.uint64).ravel()
        self.counts = np.asarray(counts, dtype=np.int64).ravel()
        self.centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
        self.name = name
        n = len(self.cell_ids)
        if not (len(self.counts) == n == len(self.centers)):
            raise InputError(f"{source}: {n} cells, {len(self.counts)} counts, "
                             f"{len(self.centers)} centers")
        if n == 0:
            raise InputError(f"{source}: a partitioning needs at least one cell")
        invalid = ~s2cell.is_valid_id(self.cell_ids)
        if invalid.any():
            k = int(np.argmax(invalid))
            raise InputError(f"{source}: class {k}: {s2cell.id_to_token(self.cell_ids[k])!r} "
                             "is not a valid S2 cell")
        # The search index of assign(): cells sorted by id, with the leaf range each covers.
        self._order = np.argsort(self.cell_ids, kind="stable")
        self._range_min, self._range_max = s2cell.leaf_ranges(self.cell_ids[self._order])
        overlap = self._range_min[1:] <= self._range_max[:-1]
        if overlap.any():
            k = int(np.argmax(overlap))
            a, b = self._order[k], self._order[k + 1]
            raise InputError(f"{source}: cells {self.tokens[a]!r} (class {a}) and "
                             f"{self.tokens[b]!r} (class {b}) overlap; cells must be disjoint")

    def __len__(self) -> int:
        return len(self.cell_ids)

    def __repr__(self) -> str:
        return f"Partitioning(name={self.name!r}, cells={len(self)}, images={self.counts.sum()})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, Partitioning) and np.array_equal(self.cell_ids, other.cell_ids)
                and np.array_equal(self.counts, other.counts)
                and np.array_equal(self.centers, other.centers))

    @property
    def tokens(self) -> list:
        """S2 cell tokens (the CSV's hex_id) in class order."""
        return [s2cell.id_to_token(c) for c in self.cell_ids.tolist()]

    @property
    def levels(self) -> np.ndarray:
        """S2 level (0..30) of each cell, np.int64 [n]."""
        return s2cell.cell_levels(self.cell_ids)

    # -- assignment -------------------------------------------------------------------------
    def locate_leaves(self, leaf_ids: np.ndarray) -> np.ndarray:
        """Class of each S2 leaf id (np.uint64 [N]) -> np.int64 [N], -1 where no cell holds it."""
        k = np.searchsorted(self._range_min, leaf_ids, side="right") - 1
        k_safe = np.maximum(k, 0)
        inside = (k >= 0) & (leaf_ids <= self._range_max[k_safe])
        return np.where(inside, self._order[k_safe], -1).astype(np.int64)

    def assign(self, lat_deg, lon_deg) -> np.ndarray:
        """Class of each point.

        Args:
          lat_deg, lon_deg: float arrays [N] in degrees.
        Returns:
          np.int64 [N]: the class whose cell contains the point, -1 where no cell does (the
          point lies in a region with <= tau_min training images).
        Raises:
          InputError for NaN or out-of-range coordinates, naming the row and value.
        """
        lat, lon = validate_coordinates(lat_deg, lon_deg)
        classes = np.empty(lat.shape, dtype=np.int64)

        def work(part):
            classes[part] = self.locate_leaves(s2cell.leaf_ids(lat[part], lon[part]))

        s2cell.map_chunks(work, len(lat))
        return classes.reshape(np.shape(lat_deg))

    def assign_tf(self, lat_deg, lon_deg):
        """`assign` in TensorFlow, for tf.data map functions, tf.functions and SavedModels.

        Args:
          lat_deg, lon_deg: float32/float64 tensors of the same shape (any rank), degrees.
        Returns:
          tf.int64 tensor of that shape: the class, or -1 where no cell holds the point. A graph
          cannot raise for one bad value, so NaN or out-of-range coordinates also give -1.
        """
        import tensorflow as tf

        lat = tf.cast(lat_deg, tf.float64)
        lon = tf.cast(lon_deg, tf.float64)
        shape = tf.shape(lat)
        lat, lon = tf.reshape(lat, [-1]), tf.reshape(lon, [-1])
        valid = (tf.abs(lat) <= 90.0) & (tf.abs(lon) <= 180.0)
        leaf = s2cell.leaf_ids_tf(tf.where(valid, lat, 0.0), tf.where(valid, lon, 0.0))
        range_min = tf.constant(s2cell.to_ordered_int64(self._range_min))
        range_max = tf.constant(s2cell.to_ordered_int64(self._range_max))
        k = tf.searchsorted(range_min, leaf, side="right", out_type=tf.int64) - 1
        k_safe = tf.maximum(k, 0)
        inside = valid & (k >= 0) & (leaf <= tf.gather(range_max, k_safe))
        classes = tf.where(inside, tf.gather(tf.constant(self._order, tf.int64), k_safe),
                           tf.constant(-1, tf.int64))
        return tf.reshape(classes, shape)

    # -- geometry -----------------------------------------------------------------------------
    def class2gps(self, centers: str = "mean") -> np.ndarray:
        """§3.4 Class2GPS: the point answered for each class, np.float64 [n, 2] ([lat, lon] degrees).

        Args:
          centers: "mean" (the cell's mean training-image coordinate, the paper's) or "geometric"
            (the S2 cell's centre, base-vgg_c of Table 6).
        """
        if centers not in CENTERS:
            raise InputError(f"centers={centers!r}: expected one of {CENTERS}")
        return self.centers if centers == "mean" else self.geometric_centers()

    def geometric_centers(self) -> np.ndarray:
        """[lat, lon] of each S2 cell's centre, np.float64 [n, 2] in degrees (base-vgg_c, Table 6)."""
        return cell_centers(self.cell_ids)

    def polygons(self) -> list:
        """The 4 vertices of each cell as np.float64 [4, 2] ([lat, lon] degrees, counter-clockwise)."""
        return list(cell_vertices(self.cell_ids))

    # -- building (§3.1) ----------------------------------------------------------------------
    @classmethod
    def build(cls, lat_deg, lon_deg, tau_min: int = 50, tau_max: int = 1000,
              min_level: int = DEFAULT_MIN_LEVEL, max_level: int = DEFAULT_MAX_LEVEL,
              name: Optional[str] = None, source: str = "input") -> "Partitioning":
        """Adaptive subdivision of the photos' S2 cells (§3.1, the algorithm in design.md).

        Every photo starts in its cell at `min_level`; cells with <= tau_min photos are dropped;
        then level by level up to `max_level`, every cell with > tau_max photos is replaced by its
        children holding photos; finally cells with <= tau_min photos are dropped. Photos of
        dropped cells belong to no class (`assign` gives -1).

        Args:
          lat_deg, lon_deg: float arrays [N] of photo coordinates in degrees.
          tau_min, tau_max: the paper's thresholds (Table 1: 50 and 5000 / 2000 / 1000).
          min_level, max_level: S2 levels to start and stop at (2 and 30).
          name: the partitioning's name (default f"cells_{tau_min}_{tau_max}").
          source: what to name in errors about the coordinates.
        Returns:
          A Partitioning with cells in increasing cell id order. The result depends only on the
          multiset of coordinates, not on their order: points are sorted by (cell, lat, lon)
          before any floating-point sum.
        """
        tau_min, tau_max = int(tau_min), int(tau_max)
        if tau_min < 0 or tau_min >= tau_max:
            raise InputError(f"tau_min must be >= 0 and below tau_max (got tau_min={tau_min}, "
                             f"tau_max={tau_max})")
        if not 0 <= min_level <= max_level <= s2cell.MAX_LEVEL:
            raise InputError(f"levels must satisfy 0 <= min_level <= max_level <= 30 "
                             f"(got {min_level}, {max_level})")
        lat, lon = validate_coordinates(lat_deg, lon_deg, source)
        if lat.size == 0:
            raise InputError(f"{source}: no coordinates to partition")
        leaves, lat, lon = _sort_points(s2cell.leaf_ids(lat, lon), lat, lon)

        starts, ends = _runs(s2cell.parent_ids(leaves, min_level))
        keep = ends - starts > tau_min
        log.info("level %d: %d cells; dropped %d cells with <= %d images (%d images)",
                 min_level, keep.sum(), (~keep).sum(), tau_min, (ends - starts)[~keep].sum())
        starts, ends = starts[keep], ends[keep]
        levels = np.full(len(starts), min_level)
        for level in range(min_level, max_level):
            split = (ends - starts > tau_max) & (levels == level)
            if not split.any():
                break
            child_starts, child_ends = _split(leaves, starts[split], ends[split], level + 1)
            log.info("level %d: splitting %d cells holding %d images into %d cells at level %d",
                     level, split.sum(), (ends - starts)[split].sum(), len(child_starts),
                     level + 1)
            starts = np.concatenate([starts[~split], child_starts])
            ends = np.concatenate([ends[~split], child_ends])
            levels = np.concatenate([levels[~split], np.full(len(child_starts), level + 1)])
            by_position = np.argsort(starts, kind="stable")  # cell id order = position order
            starts, ends, levels = starts[by_position], ends[by_position], levels[by_position]

        counts = ends - starts
        keep = counts > tau_min
        log.info("dropped %d cells with <= %d images after splitting (%d images); %d cells at "
                 "max level %d hold > %d images", (~keep).sum(), tau_min, counts[~keep].sum(),
                 ((counts > tau_max) & (levels == max_level)).sum(), max_level, tau_max)
        starts, ends, levels, counts = starts[keep], ends[keep], levels[keep], counts[keep]
        cell_ids = np.empty(len(starts), dtype=np.uint64)
        for level in np.unique(levels):  # at most 29 levels
            at_level = levels == level
            cell_ids[at_level] = s2cell.parent_ids(leaves[starts[at_level]], int(level))
        bounds = np.stack([starts, ends], axis=1).ravel()
        lat_sum = np.add.reduceat(np.append(lat, 0.0), bounds)[::2]
        lon_sum = np.add.reduceat(np.append(lon, 0.0), bounds)[::2]
        centers = np.stack([lat_sum / counts, lon_sum / counts], axis=1)
        return cls(cell_ids, counts, centers, name=name or f"cells_{tau_min}_{tau_max}",
                   source=source)

    # -- CSV I/O ------------------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path, name: Optional[str] = None) -> "Partitioning":
        """Reads the partitioning CSV format (design.md), with or without the older
        `num_images:` / `min_concept_probability:` lines above the header.

        Raises:
          InputError naming the file and line for a missing file, a wrong header, a malformed
          row, class labels out of order, an invalid S2 token or overlapping cells.
        """
        path = pathlib.Path(os.fspath(path))
        if not path.is_file():
            raise InputError(f"{path}: partitioning file not found")
        cell_ids, counts, centers = [], [], []
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            header, line = None, 0
            for line, row in enumerate(rows, start=1):
                if row and row[0].strip().startswith(("num_images:", "min_concept_probability:")):
                    continue
                header = [c.strip() for c in row]
                break
            if header is None:
                raise InputError(f"{path}: empty file; expected a header row "
                                 f"{','.join(CSV_COLUMNS)}")
            if tuple(header) != CSV_COLUMNS:
                raise InputError(f"{path}: line {line}: header {','.join(header)!r}, expected "
                                 f"{','.join(CSV_COLUMNS)!r}")
            for line, row in enumerate(rows, start=line + 1):
                if not row:
                    continue
                try:
                    if len(row) != len(CSV_COLUMNS):
                        raise ValueError(f"{len(row)} fields, expected {len(CSV_COLUMNS)}")
                    label = int(row[0])
                    if label != len(cell_ids):
                        raise ValueError(f"class_label {label}, expected {len(cell_ids)} "
                                         "(labels must be the row index)")
                    cell_ids.append(s2cell.token_to_id(row[1].strip()))
                    count = int(row[2])
                    lat, lon = float(row[3]), float(row[4])
                    if count < 0 or not (abs(lat) <= 90 and abs(lon) <= 180):
                        raise ValueError(f"count {count}, mean ({lat}, {lon}) out of range")
                except ValueError as err:
                    raise InputError(f"{path}: line {line}: {err}") from None
                counts.append(count)
                centers.append((lat, lon))
        if not cell_ids:
            raise InputError(f"{path}: no cells below the header")
        return cls(np.array(cell_ids, dtype=np.uint64), counts, centers,
                   name=name or path.stem, source=str(path))

    def to_csv(self, path) -> None:
        """Writes the partitioning CSV format; floats as their shortest exact repr, so
        `from_csv(to_csv(p)) == p`. Written to a temporary name first, then renamed."""
        path = pathlib.Path(os.fspath(path))
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            f.write(",".join(CSV_COLUMNS) + "\n")
            for k, (token, count, (lat, lon)) in enumerate(
                    zip(self.tokens, self.counts.tolist(), self.centers.tolist())):
                f.write(f"{k},{token},{count},{lat!r},{lon!r}\n")
        os.replace(tmp, path)


def _sort_points(leaves, lat, lon):
    """Sorts points by (leaf cell, lat, lon), so sums over a cell never depend on input order.

    A stable radix sort on the leaf ids does most of the work; only runs of equal leaf ids
    (photos within a centimetre of each other) are then ordered by their coordinates.
    """
    order = np.argsort(leaves, kind="stable")
    leaves, lat, lon = leaves[order], lat[order], lon[order]
    tied = np.zeros(len(leaves), dtype=bool)
    same = leaves[1:] == leaves[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    if tied.any():
        idx = np.flatnonzero(tied)
        sub = np.lexsort((lon[idx], lat[idx], leaves[idx]))
        lat[idx], lon[idx] = lat[idx][sub], lon[idx][sub]
    return leaves, lat, lon


def _runs(sorted_ids: np.ndarray):
    """Start and end (exclusive) index of each run of equal values in a sorted array."""
    change = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(sorted_ids)]])
    return starts, ends


def _split(sorted_leaves: np.ndarray, starts: np.ndarray, ends: np.ndarray, level: int):
    """Splits cells, given as index ranges of `sorted_leaves`, into their children at `level`.

    Returns the start and end index of each child that holds points, in position order.
    """
    lengths = ends - starts
    # Index of every point of the split cells, without a Python loop over cells.
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    index = np.arange(lengths.sum()) + offsets
    children = s2cell.parent_ids(sorted_leaves[index], level)
    is_start = np.zeros(len(index), dtype=bool)
    is_start[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
    is_start[1:] |= children[1:] != children[:-1]
    first = np.flatnonzero(is_start)
    child_starts = index[first]
    child_ends = child_starts + np.diff(np.append(first, len(index)))
    return child_starts, child_ends


def read_partitionings(paths: Sequence, directory=None) -> list:
    """The one way geoest loads partitionings: CSVs (design.md format), in the given order
    (coarse to fine for a Hierarchy).

    Args:
      paths: CSV paths; a relative one is looked up in `directory` when given. A `Partitioning`
        passes through as it is (gin configs may hold synthetic ones).
      directory: folder of the relative paths (training's PARTITIONINGS_DIR); None: as given.
    Returns:
      list of `Partitioning`, named after the file stems.
    Raises:
      InputError naming the file for a missing or malformed CSV (`Partitioning.from_csv`).
    """
    parts = []
    for path in paths:
        if isinstance(path, Partitioning):
            parts.append(path)
            continue
        path = pathlib.Path(os.fspath(path))
        if directory is not None and not path.is_absolute():
            path = pathlib.Path(os.fspath(directory)) / path
        parts.append(Partitioning.from_csv(path))
    return parts
