"""Confidence regions: for a mass p (0.5, 0.9), the smallest set of cells holding at least p of a
distribution over the finest cells (f* of §3.4, or the finest partitioning alone).

The region is what is drawn on a map; the radius R_p a person reads is the quantile of the error
(`geoest.geo.distance_weights`). Probabilities are in [0, 1].
"""
import numpy as np

DEFAULT_MASSES = (0.5, 0.9)


def mass_key(p: float) -> str:
    """Name suffix of a region mass: 0.5 -> "50", 0.9 -> "90", 0.975 -> "97_5"."""
    return f"{100 * p:g}".replace(".", "_")


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


__all__ = ["DEFAULT_MASSES", "in_region", "mass_key", "region_sizes"]
