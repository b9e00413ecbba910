"""§3.4 inside the network: photos' crops in, each output's best cells out.

`build_inference_model` wraps a geo model (`build_model`) into a Keras model that does, on the device,
the §3.4 steps that touch the 23,393 class probabilities of the MP-16 heads:
  1. the softmax of every crop's logits (float32) and their mean per photo;
  2. standard geo-classification: the k most probable classes of each partitioning;
  3. hierarchical geo-classification f*: the product of the probabilities along the hierarchy,
     renormalised over the fine cells, and its k most probable cells.
Only [batch, k] classes and probabilities leave the accelerator; Class2GPS (step 4: a class's
mean photo coordinate) is a table look-up after it (`geoest.inference.Locator.class2gps_tf`, in
the exported SavedModel). Pure Keras ops: it runs under any Keras backend
(`tools/benchmarks/model_step.py` times it under JAX).

    inference = build_inference_model(model, ["coarse", "middle", "fine"], parents, top_k=5)
    out = inference(crops)   # crops uint8 [B, 3, S, S, 3] -> {"fine/top_classes": int32 [B, k], ...}

The same steps as functions (`crop_probabilities`, `locate_cells`) serve validation during training,
evaluation, prediction and export alike.
"""
import keras
import numpy as np

from geoest.geo.hierarchy import HIERARCHY, f_star

TOP_CLASSES, TOP_PROBABILITIES = "top_classes", "top_probabilities"


def mean_crop_probabilities(logits, num_crops: int):
    """§3.4: the mean of the softmax probabilities of each photo's crops (keras.ops, float32).

    Args:
      logits: [batch * num_crops, n], the crops of one photo consecutive.
      num_crops: crops per photo (3 in the paper).
    Returns:
      float32 [batch, n].
    """
    probs = keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1)
    return keras.ops.mean(keras.ops.reshape(probs, (-1, num_crops, probs.shape[-1])), axis=1)


def model_outputs(model, images) -> dict:
    """The model's outputs on `images` (inference mode) as a dict keyed by output name (a
    one-output model gives one key)."""
    if isinstance(getattr(model, "_inputs_struct", None), list) and len(model._inputs_struct) == 1:  # noqa: SLF001
        images = [images]        # a model saved with its one input in a list: call it the same way
    outputs = model(images, training=False)
    if isinstance(outputs, dict):
        return outputs
    if isinstance(outputs, (list, tuple)):
        return dict(zip(model.output_names, outputs))
    return {model.output_names[0]: outputs}


def crop_probabilities(model, crops) -> dict:
    """Step 1 of §3.4: the model on every crop, the mean of each photo's crops' probabilities.

    Used by validation during training and by evaluation, prediction and calibration alike.

    Args:
      model: Keras model taking images [N, S, S, 3] (uint8 in [0, 255] for geoest's models) and
        returning logits per output.
      crops: [batch, num_crops, S, S, 3] in the model's input dtype (numpy or tensor, the last
        four dimensions known).
    Returns:
      dict output name -> float32 tensor [batch, n_classes] of mean probabilities.
    """
    crops = keras.ops.convert_to_tensor(crops)
    num_crops = crops.shape[1]
    flat = keras.ops.reshape(crops, (-1,) + tuple(crops.shape[2:]))
    return {name: mean_crop_probabilities(logits, num_crops)
            for name, logits in model_outputs(model, flat).items()}


def locate_cells(probs, names, parents, top_k: int) -> dict:
    """Steps 2-3 of §3.4 in Keras ops: each partitioning's and f*'s k most probable classes.

    Args:
      probs: dict name -> float32 [batch, n_cells] (mean crop probabilities).
      names: the partitionings' names, coarse to fine.
      parents: int [n_fine, len(names)] (`Hierarchy.parents`), or None for no f*.
      top_k: classes per output.
    Returns:
      {f"{output}/top_classes": int32 [batch, k], f"{output}/top_probabilities": float32 [batch, k]}
      for each name and, with parents, HIERARCHY (f*: the product renormalised over the fine
      cells); best first.
    """
    probs = {name: probs[name] for name in names}
    if parents is not None:
        probs[HIERARCHY] = f_star([probs[name] for name in names], parents, keras.ops)
    out = {}
    for name, p in probs.items():
        best, classes = keras.ops.top_k(p, k=min(top_k, p.shape[-1]))
        out[f"{name}/{TOP_CLASSES}"] = keras.ops.cast(classes, "int32")
        out[f"{name}/{TOP_PROBABILITIES}"] = best
    return out


class _FlattenCrops(keras.layers.Layer):
    """[batch, crops, S, S, 3] -> [batch * crops, S, S, 3], the crops of one photo consecutive."""

    def call(self, crops):
        return keras.ops.reshape(crops, (-1,) + tuple(crops.shape[2:]))

    def compute_output_spec(self, crops):
        batch = None if crops.shape[0] is None else crops.shape[0] * crops.shape[1]
        return keras.KerasTensor((batch,) + tuple(crops.shape[2:]), dtype=crops.dtype)


class _LocateCells(keras.layers.Layer):
    """Logits of every crop -> each output's top-k classes and probabilities (steps 1-3)."""

    def __init__(self, names, parents, top_k: int, num_crops: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.names, self.top_k, self.num_crops = list(names), int(top_k), int(num_crops)
        self.parents = None if parents is None else np.asarray(parents, np.int32)

    def call(self, logits):
        probs = {name: mean_crop_probabilities(logits[name], self.num_crops) for name in self.names}
        return locate_cells(probs, self.names, self.parents, self.top_k)

    def compute_output_spec(self, logits):
        batch = logits[self.names[0]].shape[0]
        batch = None if batch is None else batch // self.num_crops
        sizes = {name: logits[name].shape[-1] for name in self.names}
        if self.parents is not None:
            sizes[HIERARCHY] = sizes[self.names[-1]]
        out = {}
        for name, n in sizes.items():
            k = min(self.top_k, n)
            out[f"{name}/{TOP_CLASSES}"] = keras.KerasTensor((batch, k), dtype="int32")
            out[f"{name}/{TOP_PROBABILITIES}"] = keras.KerasTensor((batch, k), dtype="float32")
        return out


def build_inference_model(model: keras.Model, names, parents=None, *, top_k: int = 5, num_crops: int = 3) -> keras.Model:
    """A Keras model: crops of photos -> the top-k cells of each partitioning and of f* (§3.4).

    Args:
      model: a geo model (`build_model`): uint8 images [N, S, S, 3] -> {name: logits [N, n]}.
      names: the partitionings' output names, coarse to fine (other outputs, e.g. the MTN's
        scene head, are left out).
      parents: int [n_fine, len(names)] ancestors of each fine cell (`Hierarchy.parents`); None
        for no f* output.
      top_k: classes returned per output.
      num_crops: crops per photo.
    Returns:
      keras.Model: crops [B, num_crops, S, S, 3] (the model's input dtype) -> dict
      {f"{output}/top_classes": int32 [B, k], f"{output}/top_probabilities": float32 [B, k]}
      for each name and, with parents, "hierarchy"; best first.
    """
    crops = keras.Input((num_crops,) + tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype, name="crops")
    logits = model(_FlattenCrops(name="flatten_crops")(crops))
    if not isinstance(logits, dict):
        logits = dict(zip(model.output_names, logits if isinstance(logits, (list, tuple)) else [logits]))
    located = _LocateCells(names, parents, top_k, num_crops, name="locate_cells")({n: logits[n] for n in names})
    return keras.Model(crops, located, name="inference_model")
