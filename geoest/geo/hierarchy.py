"""The hierarchy between partitionings and the hierarchical prediction f* (§3.4).

With the same tau_min for every partitioning, each cell of the finest partitioning lies inside
exactly one cell of every coarser one (its S2 ancestor). §3.4 multiplies the probabilities along
that hierarchy (as YOLO9000 does): p*(fine cell) = prod over partitionings of p(ancestor cell).
"""
from typing import Sequence

import numpy as np

from geoest.errors import InputError
from geoest.geo import s2cell

HIERARCHY = "hierarchy"   # the name of the f* prediction beside the partitionings' names


class Hierarchy:
    """Parents of every finest cell in each partitioning.

    Args:
      partitionings: Partitioning objects ordered coarse to fine (any number >= 1); the last one
        is the finest.
    Attributes:
      partitionings: the list as given.
      parents: np.int64 [n_fine, n_partitionings]; parents[c, k] is the class in partitioning k
        of the cell containing fine cell c (parents[:, -1] == arange(n_fine)).
    Raises:
      InputError naming the fine cell and partitioning when a fine cell has no ancestor there
      (the partitionings were not built from the same images with the same tau_min).
    """

    def __init__(self, partitionings: Sequence):
        self.partitionings = list(partitionings)
        if not self.partitionings:
            raise InputError("a hierarchy needs at least one partitioning")
        fine = self.partitionings[-1]
        first, last = s2cell.leaf_ranges(fine.cell_ids)
        columns = []
        for p in self.partitionings:
            parent, parent_of_last = p.locate_leaves(first), p.locate_leaves(last)
            orphan = (parent < 0) | (parent != parent_of_last)
            if orphan.any():
                c = int(np.argmax(orphan))
                raise InputError(
                    f"fine cell {fine.tokens[c]!r} (class {c} of {fine.name!r}) has no ancestor "
                    f"cell in partitioning {p.name!r}; {orphan.sum()} fine cells are affected. "
                    "Partitionings of one hierarchy must come from the same images and tau_min.")
            columns.append(parent)
        self.parents = np.stack(columns, axis=1)

    def __len__(self) -> int:
        return len(self.partitionings)

    def _check(self, probs: Sequence, shape_of) -> None:
        if len(probs) != len(self.partitionings):
            raise InputError(f"expected {len(self.partitionings)} probability arrays (coarse to "
                             f"fine), got {len(probs)}")
        for p, part in zip(probs, self.partitionings):
            if shape_of(p)[-1] != len(part):
                raise InputError(f"probabilities for {part.name!r} have {shape_of(p)[-1]} "
                                 f"classes, the partitioning has {len(part)}")

    def combine(self, probs: Sequence, ops=np):
        """§3.4 the product along the hierarchy (`hierarchy_product`), after checking the shapes.

        Args:
          probs: one array per partitioning, coarse to fine, each [batch, n_cells_k] (softmax
            probabilities).
          ops: numpy, or keras.ops for tensors (inside a model or a tf.function, any backend).
        Returns:
          [batch, n_fine]: each fine cell's product of its ancestors' probabilities (not renormalised).
        """
        self._check(probs, np.shape if ops is np else (lambda t: t.shape))
        return hierarchy_product(list(probs), self.parents, ops)

    def f_star(self, probs: Sequence, ops=np):
        """§3.4 f* over this hierarchy: `combine` renormalised over the fine cells (`f_star`).

        Returns:
          [batch, n_fine], each row summing to 1.
        """
        self._check(probs, np.shape if ops is np else (lambda t: t.shape))
        return f_star(list(probs), self.parents, ops)


_TINY = 1e-30   # a row whose product is 0 in every fine cell stays 0 (float32-safe)


def hierarchy_product(probs: Sequence, parents, ops=np):
    """§3.4 p(fine cell) x p(its ancestor) in every coarser partitioning.

    Args:
      probs: list of [batch, n_cells_k] probabilities, coarse to fine.
      parents: int [n_fine, len(probs)], the class of each fine cell's ancestor in each
        partitioning (`Hierarchy.parents`).
      ops: numpy, or keras.ops (the same `take`).
    Returns:
      [batch, n_fine] in the probabilities' dtype (not renormalised).
    """
    parents = np.asarray(parents)
    joint = probs[-1]
    for k in range(len(probs) - 1):
        joint = joint * ops.take(probs[k], parents[:, k].astype(np.int32), axis=-1)
    return joint


def f_star(probs: Sequence, parents, ops=np):
    """§3.4 hierarchical geo-classification f*: `hierarchy_product` renormalised over the fine
    cells (the maximum is unchanged). The one f* of geoest: numpy (evaluation, prediction,
    calibration) and Keras ops (the on-device inference model, validation during training, the
    SavedModel) call it.

    Args:
      probs: list of [batch, n_cells_k] probabilities, coarse to fine.
      parents: int [n_fine, len(probs)] (`Hierarchy.parents`).
      ops: numpy, or keras.ops (the same `take`, `sum` and `maximum`).
    Returns:
      [batch, n_fine], each row summing to 1, in the probabilities' dtype.
    """
    joint = hierarchy_product(probs, parents, ops)
    return joint / ops.maximum(ops.sum(joint, axis=-1, keepdims=True), _TINY)
