"""Back-off: a photo whose answer is not sure enough at the finest level answers at the finest
level of the hierarchy (fine -> middle -> coarse) that is, or gives no answer.

Two forms of "sure enough" at a level:

  * `back_off_cells`: the predicted cell of the level holds at least q of the distribution. The
    coarser levels' probabilities are the fine distribution's marginals (`level_probabilities`), so a
    coarser cell never holds less than the cells inside it;
  * `finest_level_reaching`: P(error <= R_level) >= q, with one radius per level (e.g. 750 / 200 /
    25 km, `geoest.geo.distance_weights`).

Levels are indexed coarse to fine; NO_ANSWER (-1) where no level reaches q.
"""
import numpy as np

from geoest.geo.checks import check_min_confidence

NO_ANSWER = -1


def level_names(n: int) -> tuple:
    """Names of the levels of a hierarchy of n partitionings, coarse to fine."""
    return {1: ("fine",), 2: ("coarse", "fine"), 3: ("coarse", "middle", "fine")}.get(
        n, tuple(f"level{k}" for k in range(n)))


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


def back_off_cells(level_probs, min_confidence: float):
    """Abstention and back-off: the cell answered at the finest level whose predicted cell holds at least q.

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


def finest_level_reaching(within_at_levels, min_confidence: float) -> np.ndarray:
    """Abstention and back-off on P(error <= R): the finest level whose P(error <= R_level) >= q.

    Args:
      within_at_levels: float [B, L] P(error <= R_level) per level, coarse to fine (R_level decreasing,
        e.g. 750 / 200 / 25 km).
      min_confidence: q in [0, 1].
    Returns:
      int64 [B]: index of the answered level, NO_ANSWER (-1) where no level reaches q.
    """
    ok = np.asarray(within_at_levels, np.float64) >= check_min_confidence(min_confidence)
    levels = np.arange(ok.shape[1])[None, :]
    return np.where(ok, levels, NO_ANSWER).max(axis=-1).astype(np.int64)


__all__ = ["NO_ANSWER", "back_off_cells", "finest_level_reaching", "level_names", "level_probabilities"]
