"""§3.4: from a model's outputs on three crops to cells and GPS coordinates.

The steps, in the paper's order:
  1. apply the model to three evenly sampled crops of the image and take the mean of the
     crops' softmax probabilities (`crop_probabilities`);
  2. standard geo-classification: the class of maximum probability in each partitioning;
  3. hierarchical geo-classification (f*): multiply the probabilities along the hierarchy of
     partitionings, coarse to fine (`geoest.geo.hierarchy.f_star`), and take the maximum;
  4. Class2GPS: the predicted cell's mean image coordinate (or, for base-vgg_c of Table 6, the
     cell's geometric centre).

`Locator` does steps 2-4 on probabilities in numpy (`locate`) and in the graph (`locate_tf`, used
inside the exported SavedModel), and builds the on-device form (`device_model`: steps 1-3 as
Keras ops inside the model, so only the top-k classes leave an accelerator); the graph forms share
`geoest.models.locate_cells`, `class2gps_tf` adds step 4. All give the same classes and
coordinates. Step 1 (`crop_probabilities`), the graph steps 2-3 (`locate_cells`) and Class2GPS
(`Partitioning.class2gps`) live in `geoest.models` and `geoest.geo`, where validation during
training (`geoest.training.callbacks.GeoValidation`) uses the same functions.
"""
import dataclasses

import numpy as np

from geoest.errors import InputError
from geoest.geo import Hierarchy
from geoest.geo.hierarchy import HIERARCHY   # key of the f* prediction beside the partitionings' names
from geoest.geo.partitioning import CENTERS  # Class2GPS points: "mean", "geometric"



def model_outputs(model, images):
    """The model's outputs as a dict keyed by output name (`geoest.models.inference_model.model_outputs`)."""
    from geoest.models import inference_model

    return inference_model.model_outputs(model, images)


def crop_probabilities(model, crops):
    """Step 1 of §3.4, the function validation uses during training
    (`geoest.models.inference_model.crop_probabilities`): crops [batch, num_crops, S, S, 3] -> dict output
    name -> float32 tensor [batch, n_classes] of mean crop probabilities."""
    from geoest.models import inference_model

    return inference_model.crop_probabilities(model, crops)


@dataclasses.dataclass
class Located:
    """Predictions of one output (a partitioning, or the hierarchy) for a batch, numpy.

    classes: int64 [batch] predicted class; probs: float32 [batch] its probability;
    lat_deg, lon_deg: float64 [batch] Class2GPS coordinates of the predicted cell;
    top_classes: int64 [batch, k]; top_probs: float32 [batch, k], best first.
    """
    classes: np.ndarray
    probs: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    top_classes: np.ndarray
    top_probs: np.ndarray


def top_k(probs: np.ndarray, k: int):
    """The k largest probabilities per row, best first: (classes int64 [B, k], probs [B, k])."""
    k = min(k, probs.shape[1])
    part = np.sort(np.argpartition(-probs, k - 1, axis=1)[:, :k], axis=1)   # ties: lower class first
    order = np.argsort(-np.take_along_axis(probs, part, axis=1), axis=1, kind="stable")
    classes = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return classes, np.take_along_axis(probs, classes, axis=1)


class Locator:
    """Standard and hierarchical geo-classification plus Class2GPS (§3.4) for a set of partitionings.

    Args:
      partitionings: the `geoest.geo.Partitioning`s of the model's heads, in any order; they are
        sorted coarse to fine (by number of cells) for the hierarchy.
      centers: "mean" (the cell's mean image coordinate, §3.4) or "geometric" (the S2 cell's
        centre, base-vgg_c in Table 6).
      hierarchy: combine the partitionings hierarchically (needs two or more; f* in Table 3).
    """

    def __init__(self, partitionings, centers: str = "mean", hierarchy: bool = True):
        if centers not in CENTERS:
            raise InputError(f"centers={centers!r}: expected one of {CENTERS}")
        if not partitionings:
            raise InputError("no partitionings given: a model needs at least one geo-cell head")
        names = [p.name for p in partitionings]
        if len(set(names)) != len(names) or HIERARCHY in names:
            raise InputError(f"partitioning names {names} must be unique and not {HIERARCHY!r}")
        self.partitionings = sorted(partitionings, key=len)   # coarse to fine
        self.centers = centers
        self._centers = {p.name: np.asarray(p.class2gps(centers), np.float64) for p in self.partitionings}
        self.hierarchy = None
        if hierarchy and len(self.partitionings) >= 2:
            self.hierarchy = Hierarchy(self.partitionings)

    @property
    def names(self):
        """Output names, coarse to fine, then HIERARCHY when combined."""
        return [p.name for p in self.partitionings] + ([HIERARCHY] if self.hierarchy else [])

    @property
    def main(self) -> str:
        """The output a user gets by default: f* when there is a hierarchy, else the finest."""
        return self.names[-1]

    def partitioning(self, name: str):
        """The partitioning whose cells an output's classes index (the finest for HIERARCHY)."""
        if name == HIERARCHY:
            return self.partitionings[-1]
        for p in self.partitionings:
            if p.name == name:
                return p
        raise KeyError(name)

    def _check(self, probs):
        missing = [p.name for p in self.partitionings if p.name not in probs]
        if missing:
            raise InputError(f"model outputs {sorted(probs)} lack the partitionings {missing}")
        for p in self.partitionings:
            n = probs[p.name].shape[-1]
            if n != len(p):
                raise InputError(f"output {p.name!r} has {n} classes but partitioning {p.name!r} "
                                 f"has {len(p)} cells")

    def cell_probabilities(self, probs) -> dict:
        """Per-output cell probabilities, numpy: the partitionings' own and, for HIERARCHY, §3.4's
        product along the hierarchy renormalised over the fine cells (`geoest.geo.hierarchy.f_star`).

        Args:
          probs: dict name -> float [batch, n_cells] (mean crop probabilities).
        Returns:
          dict output name (see `names`) -> float32 [batch, n_cells].
        """
        self._check(probs)
        out = {p.name: np.asarray(probs[p.name], np.float32) for p in self.partitionings}
        if self.hierarchy:
            joint = self.hierarchy.f_star([np.asarray(probs[p.name], np.float64) for p in self.partitionings])
            out[HIERARCHY] = joint.astype(np.float32)
        return out

    def locate(self, probs, top_k_cells: int = 5) -> dict:
        """Steps 2-4 of §3.4 in numpy: dict output name -> `Located`."""
        result = {}
        for name, cell_probs in self.cell_probabilities(probs).items():
            classes, best = top_k(cell_probs, top_k_cells)
            centers = self._centers[self.partitioning(name).name]
            result[name] = Located(classes=classes[:, 0], probs=best[:, 0],
                                   lat_deg=centers[classes[:, 0], 0], lon_deg=centers[classes[:, 0], 1],
                                   top_classes=classes, top_probs=best)
        return result

    def device_model(self, model, top_k_cells: int = 5, num_crops: int = 3):
        """Steps 1-3 of §3.4 on the device: a Keras model, crops [B, num_crops, S, S, 3] -> each
        output's top-k classes and probabilities (`geoest.models.build_inference_model`)."""
        from geoest.models import build_inference_model

        return build_inference_model(model, [p.name for p in self.partitionings],
                             self.hierarchy.parents if self.hierarchy else None,
                             top_k=top_k_cells, num_crops=num_crops)

    def locate_tf(self, probs, top_k_cells: int = 5) -> dict:
        """Steps 2-4 of §3.4 in the graph on probabilities (dict name -> [B, n_cells]): the same
        top-k as `device_model` (`geoest.models.locate_cells`), then `class2gps_tf`."""
        import tensorflow as tf

        from geoest.models import locate_cells

        self._check(probs)
        located = locate_cells({p.name: tf.cast(probs[p.name], tf.float32) for p in self.partitionings},
                               [p.name for p in self.partitionings],
                               self.hierarchy.parents if self.hierarchy else None, top_k_cells)
        return self.class2gps_tf(located)

    def class2gps_tf(self, located) -> dict:
        """Step 4 of §3.4 in TensorFlow (graph-safe), on a `device_model`'s outputs: dict output name ->
        dict of tensors "class" int64 [B], "probability" [B], "lat", "lon" float64 [B] (degrees),
        "top_classes" int64 [B, k], "top_probabilities" [B, k], "top_cells" string [B, k] (S2 tokens)."""
        import tensorflow as tf

        from geoest.models.inference_model import TOP_CLASSES, TOP_PROBABILITIES

        result = {}
        for name in self.names:
            partitioning = self.partitioning(name)
            classes = tf.cast(located[f"{name}/{TOP_CLASSES}"], tf.int64)
            best = located[f"{name}/{TOP_PROBABILITIES}"]
            centers = tf.constant(self._centers[partitioning.name], tf.float64)
            tokens = tf.constant(list(partitioning.tokens))
            result[name] = {"class": classes[:, 0], "probability": best[:, 0],
                            "lat": tf.gather(centers[:, 0], classes[:, 0]),
                            "lon": tf.gather(centers[:, 1], classes[:, 0]),
                            "top_classes": classes, "top_probabilities": best,
                            "top_cells": tf.gather(tokens, classes)}
        return result
