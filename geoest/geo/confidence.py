"""How sure is a guess, for one hierarchy: the answers of §3.4 with their confidence regions,
back-off and resolution cap (`Confidence`), in numpy and, for the exported SavedModel, in TensorFlow.

Everything works on the distribution over the finest cells that §3.4 predicts (f*, or the finest
partitioning alone):

  * the probability of the predicted cell, and per mass p the region (`geoest.geo.regions`);
  * back-off to coarser levels (`geoest.geo.back_off`);
  * the resolution cap (`geoest.geo.resolution_cap`).

Units: degrees for coordinates, km for distances, probabilities in [0, 1].
"""
import numpy as np

from geoest.geo.back_off import NO_ANSWER, back_off_cells, level_names, level_probabilities
from geoest.geo.checks import check_masses, check_min_confidence
from geoest.geo.regions import DEFAULT_MASSES, mass_key, region_sizes
from geoest.geo.resolution_cap import ResolutionCap


def finite_rows(probs) -> np.ndarray:
    """bool [B]: rows of a [B, n] probability array holding no NaN or infinity (the rows `Confidence`
    answers; the caller drops the others)."""
    return np.isfinite(np.asarray(probs, np.float64)).all(axis=-1)


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
        level, classes, probability = back_off_cells(level_probs, self.min_confidence)
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


__all__ = ["Confidence", "finite_rows"]
