"""§3.3-3.4 Individual Scene Networks at test time: each image goes to the ISN of its S3 concept.

"the scene label is first predicted using the maximum probability as described in Section 3.2 in
order to feed the image into the respective ISN for geolocalization" (§3.4). The S3 probabilities
come from the test data (a meta CSV's Prob_indoor/natural/urban or the records' scene/probs3),
from a scene classifier, or from a Multi-Task Network's scene head (`scene_probabilities`).
"""
import numpy as np

from geoest.errors import InputError
from geoest.heads import SCENE_HEAD, output_sizes
from geoest.inference.core import crop_probabilities, model_outputs
from geoest.scene.labeler import PREPROCESSING
from geoest.scene.places365 import CONCEPTS, LEVEL_CLASSES, scene_label


def route(probs3, ids=None) -> np.ndarray:
    """§3.4: the S3 concept of each image, the argmax of its scene probabilities.

    Args:
      probs3: float [batch, 3] in CONCEPTS order (indoor, natural, urban).
      ids: optional image ids [batch], named in the error for images without scene probabilities.
    Returns:
      int64 [batch], index into CONCEPTS.
    """
    probs3 = np.asarray(probs3, np.float64)
    if probs3.ndim != 2 or probs3.shape[1] != len(CONCEPTS):
        raise InputError(f"scene probabilities have shape {probs3.shape}; expected [batch, 3] "
                         f"for {CONCEPTS}")
    labels = scene_label(probs3)
    unknown = labels < 0
    if unknown.any():
        which = np.asarray(ids)[unknown][:5].tolist() if ids is not None else np.flatnonzero(unknown)[:5].tolist()
        raise InputError(f"{int(unknown.sum())} image(s) have no S3 scene probabilities (e.g. {which}); "
                         "give the test data scene columns or route with a scene model / MTN")
    return labels


PROBABILITIES, LOGITS = "probabilities", "logits"   # what a scene model outputs
SCENE_WIDTHS = {n: level for level, n in LEVEL_CLASSES.items()}     # §3.2 scene sets by number of classes


def scene_to_s3_matrix(n_scene: int, scene_hierarchy=None, source: str = "scene model") -> np.ndarray:
    """float32 [n_scene, 3] mapping a scene head's probabilities to S3 (§3.2).

    3 classes are S3 already; 365 use the Places365 hierarchy's S3 aggregation; 16 map each S16
    group to S3 by the share of its categories' S3 mass. 16 and 365 need `scene_hierarchy`
    (`geoest.scene.places365.load_scene_hierarchy`). `source` names the model in errors.
    """
    if n_scene not in SCENE_WIDTHS:
        raise InputError(f"{source}: its scene output has {n_scene} classes; expected 3 (S3), 16 (S16) "
                         "or 365 (S365, Places365)")
    if n_scene == len(CONCEPTS):
        return np.eye(len(CONCEPTS), dtype=np.float32)
    if scene_hierarchy is None:
        raise InputError(f"{source}: a scene output with {n_scene} classes needs the Places365 scene "
                         "hierarchy (--places365_dir) to map it to S3")
    if n_scene == 365:
        return np.asarray(scene_hierarchy.s3_matrix, np.float32)
    s16_to_s3 = np.asarray(scene_hierarchy.s16_matrix, np.float64).T @ scene_hierarchy.s3_matrix
    return (s16_to_s3 / s16_to_s3.sum(axis=1, keepdims=True)).astype(np.float32)


def _last_layer(model, output: str):
    """The layer that produces a model's output (looking inside nested models)."""
    outputs = model.output if isinstance(model.output, dict) else dict(zip(model.output_names, model.outputs))
    layer = outputs[output]._keras_history.operation
    while hasattr(layer, "outputs") and hasattr(layer, "layers") and len(layer.outputs) == 1:
        layer = layer.outputs[0]._keras_history.operation          # a nested functional model
    return layer


def output_kind(model, output: str) -> str | None:
    """PROBABILITIES or LOGITS as the model's last activation on `output` says; None if it cannot tell.

    A softmax (a Dense / Conv layer's activation, an Activation or a Softmax layer) gives
    probabilities; a layer without activation (linear, as the MTN's scene head) gives logits.
    """
    import keras

    layer = _last_layer(model, output)
    if isinstance(layer, keras.layers.Softmax):
        return PROBABILITIES
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name == "softmax":
        return PROBABILITIES
    if name == "linear" and hasattr(layer, "kernel"):
        return LOGITS
    return None


class ModelScenes:
    """S3 probabilities of each image from a model's scene output, averaged over its crops.

    Whether the output is probabilities or logits is read from the model's last activation
    (`output_kind`): a scene classifier ending in a softmax, an MTN's scene head without one.

    Args:
      model: Keras model on the same crops; an MTN (output "scene") or a scene classifier (one
        output); 3, 16 or 365 classes.
      output: name of the scene output; None takes the model's only output.
      scene_hierarchy: needed when the output has 16 or 365 classes.
      preprocess: the input convention of a model that takes float images, a key of
        `geoest.scene.labeler.PREPROCESSING` ("tf": [-1, 1]; "caffe" for the converted Places365
        ResNet-152). A model taking uint8 images (an MTN, any geoest model) gets the crops as
        they are and scales them itself.
      source: the model's file, named in errors.
      kind: PROBABILITIES or LOGITS, only for a model whose last activation does not tell
        (it must agree with the model's when that tells).
    """

    def __init__(self, model, output: str | None = SCENE_HEAD, scene_hierarchy=None, preprocess: str = "tf",
                 source: str = "scene model", kind: str | None = None):
        from geoest.models import IMAGE_DTYPE

        if preprocess not in PREPROCESSING:
            raise InputError(f"preprocess {preprocess!r}: expected one of {', '.join(PREPROCESSING)}")
        self._preprocess = None if model.inputs[0].dtype == IMAGE_DTYPE else PREPROCESSING[preprocess]
        sizes = output_sizes(model)
        names = list(sizes)
        if output is None:
            if len(names) != 1:
                raise InputError(f"{source}: outputs {names}; a scene classifier has one output")
            output = names[0]
        if output not in names:
            raise InputError(f"{source}: no scene output {output!r} (outputs: {names}); an MTN has one")
        told = output_kind(model, output)
        if kind not in (None, PROBABILITIES, LOGITS):
            raise InputError(f"scene output kind {kind!r}: expected {PROBABILITIES!r} or {LOGITS!r}")
        if told is None and kind is None:
            raise InputError(f"{source}: cannot tell from its last layer whether output {output!r} is "
                             f"probabilities or logits; say which with --scene_output={PROBABILITIES} "
                             f"or --scene_output={LOGITS}")
        if told is not None and kind is not None and told != kind:
            raise InputError(f"{source}: --scene_output={kind} but its last activation makes output "
                             f"{output!r} {told}")
        self.model, self.output, self.source = model, output, source
        self.from_logits = (told or kind) == LOGITS
        self._to_s3 = scene_to_s3_matrix(sizes[output], scene_hierarchy, source)

    def __call__(self, batch) -> np.ndarray:
        """float32 [batch, 3] S3 probabilities of batch["crops"] uint8 [batch, crops, S, S, 3].

        Raises InputError naming the photo (batch["id"]) whose scene output is NaN, or, for
        probabilities, negative or not summing to 1.
        """
        crops = np.asarray(batch["crops"])
        flat = crops.reshape((-1,) + crops.shape[2:])
        if self._preprocess is not None:
            flat = self._preprocess(flat.astype(np.float32))
        values = np.asarray(model_outputs(self.model, flat)[self.output], np.float64)
        values = values.reshape(crops.shape[0], crops.shape[1], -1)
        finite = np.isfinite(values).all(axis=(1, 2))
        if self.from_logits:
            bad, why = ~finite, "NaN or infinite logits"
            probs = np.exp(values - values.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
        else:
            sums = values.sum(axis=-1)
            bad = ~finite | (values.min(axis=(1, 2)) < -1e-6) | (np.abs(sums - 1.0).max(axis=1) > 1e-3)
            why = f"probabilities that are NaN, negative or do not sum to 1 (sums {np.round(sums[bad.argmax()], 4)})"
            probs = values
        if bad.any():
            ids = batch.get("id")
            which = ids[int(np.argmax(bad))] if ids is not None else f"#{int(np.argmax(bad))} of the batch"
            which = which.decode("utf-8", "replace") if isinstance(which, bytes) else which
            raise InputError(f"{self.source}: photo {which}: the scene output {self.output!r} holds {why}")
        return (probs.mean(axis=1) @ self._to_s3).astype(np.float32)


def data_scenes(batch) -> np.ndarray:
    """S3 probabilities carried by the test data (meta CSV or TFRecords): batch["probs3"]."""
    return np.asarray(batch["probs3"], np.float32)


def check_concepts(concepts, what: str) -> None:
    """InputError unless `concepts` (the keys of a dict of ISNs) are exactly the three S3 concepts
    (§3.3: one ISN per concept)."""
    if sorted(concepts) != sorted(CONCEPTS):
        raise InputError(f"{what} given for {sorted(concepts)}; expected exactly {list(CONCEPTS)}, one each")


class IsnEnsemble:
    """ISNs(T, C, S3): one geolocation model per S3 concept, chosen per image by its scene.

    Args:
      models: dict concept name ("indoor", "natural", "urban") -> Keras model; all three needed,
        all with the same geo outputs.
      scenes: callable batch -> float [batch, 3] S3 probabilities (`data_scenes`, `ModelScenes`).
    """

    def __init__(self, models: dict, scenes=data_scenes):
        check_concepts(models, "ISN models")
        geo_outputs = {c: sorted(n for n in output_sizes(m) if n != SCENE_HEAD) for c, m in models.items()}
        if len({tuple(v) for v in geo_outputs.values()}) != 1:
            raise InputError(f"ISNs have different geo outputs: {geo_outputs}; they must share partitionings")
        self.models = [models[c] for c in CONCEPTS]
        self.scenes = scenes

    def concepts(self, batch) -> np.ndarray:
        """int64 [batch] CONCEPTS index each image is routed to."""
        return route(self.scenes(batch), batch.get("id"))

    def probabilities(self, batch, concepts=None) -> dict:
        """dict output name -> float32 [batch, n] mean crop probabilities, each image from its ISN."""
        if concepts is None:
            concepts = self.concepts(batch)
        crops = np.asarray(batch["crops"])
        out = {}
        for index, model in enumerate(self.models):
            rows = np.flatnonzero(concepts == index)
            if rows.size == 0:
                continue
            for name, probs in crop_probabilities(model, crops[rows]).items():
                if name not in out:
                    out[name] = np.zeros((len(crops), probs.shape[1]), np.float32)
                out[name][rows] = probs.numpy()
        return out
