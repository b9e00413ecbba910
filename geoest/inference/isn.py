"""§3.3-3.4 Individual Scene Networks at test time: each image goes to the ISN of its S3 concept.

"the scene label is first predicted using the maximum probability as described in Section 3.2 in
order to feed the image into the respective ISN for geolocalization" (§3.4). The S3 probabilities
come from the test data (a meta CSV's Prob_indoor/natural/urban or the records' scene/probs3),
from a scene classifier, or from a Multi-Task Network's scene head (`scene_probabilities`).
"""
import numpy as np

from geoest.errors import InputError
from geoest.inference.core import SCENE, crop_probabilities, model_outputs, output_sizes
from geoest.scene.places365 import CONCEPTS


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
    unknown = ~np.isfinite(probs3).all(axis=1) | (probs3 < 0).any(axis=1)
    if unknown.any():
        which = np.asarray(ids)[unknown][:5].tolist() if ids is not None else np.flatnonzero(unknown)[:5].tolist()
        raise InputError(f"{int(unknown.sum())} image(s) have no S3 scene probabilities (e.g. {which}); "
                         "give the test data scene columns or route with a scene model / MTN")
    return np.argmax(probs3, axis=1).astype(np.int64)


def scene_to_s3_matrix(n_scene: int, scene_hierarchy=None) -> np.ndarray:
    """float32 [n_scene, 3] mapping a scene head's probabilities to S3 (§3.2).

    3 classes are S3 already; 365 use the Places365 hierarchy's S3 aggregation; 16 map each S16
    group to S3 by the share of its categories' S3 mass. 16 and 365 need `scene_hierarchy`
    (`geoest.scene.places365.load_scene_hierarchy`).
    """
    if n_scene == len(CONCEPTS):
        return np.eye(len(CONCEPTS), dtype=np.float32)
    if scene_hierarchy is None:
        raise InputError(f"a scene head with {n_scene} classes needs the Places365 scene hierarchy "
                         "(--places365_dir) to map it to S3")
    if n_scene == 365:
        return np.asarray(scene_hierarchy.s3_matrix, np.float32)
    if n_scene == 16:
        s16_to_s3 = np.asarray(scene_hierarchy.s16_matrix, np.float64).T @ scene_hierarchy.s3_matrix
        return (s16_to_s3 / s16_to_s3.sum(axis=1, keepdims=True)).astype(np.float32)
    raise InputError(f"a scene head with {n_scene} classes is none of S3, S16, S365")


class ModelScenes:
    """S3 probabilities of each image from a model's scene output, averaged over its crops.

    Args:
      model: Keras model on the same crops; an MTN (output "scene", logits) or a scene
        classifier (one output of probabilities, `from_logits=False`).
      output: name of the scene output; None takes the model's only output.
      from_logits: the output is logits (softmax applied) rather than probabilities.
      scene_hierarchy: needed when the output has 16 or 365 classes.
      preprocess: the input convention of a model that takes float images, a key of
        `geoest.scene.labeler.PREPROCESSING` ("tf": [-1, 1]; "caffe" for the converted Places365
        ResNet-152). A model taking uint8 images (an MTN, any geoest model) gets the crops as
        they are and scales them itself.
    """

    def __init__(self, model, output: str | None = SCENE, from_logits: bool = True, scene_hierarchy=None,
                 preprocess: str = "tf"):
        from geoest.models import IMAGE_DTYPE
        from geoest.scene.labeler import PREPROCESSING

        if preprocess not in PREPROCESSING:
            raise InputError(f"preprocess {preprocess!r}: expected one of {', '.join(PREPROCESSING)}")
        self._preprocess = None if model.inputs[0].dtype == IMAGE_DTYPE else PREPROCESSING[preprocess]
        sizes = output_sizes(model)
        names = list(sizes)
        if output is None:
            if len(names) != 1:
                raise InputError(f"scene model has outputs {names}; name the scene output")
            output = names[0]
        if output not in names:
            raise InputError(f"model has no scene output {output!r} (outputs: {names}); an MTN has one")
        self.model, self.output, self.from_logits = model, output, from_logits
        self._to_s3 = scene_to_s3_matrix(sizes[output], scene_hierarchy)

    def __call__(self, batch) -> np.ndarray:
        """float32 [batch, 3] S3 probabilities of batch["crops"] uint8 [batch, crops, S, S, 3]."""
        crops = np.asarray(batch["crops"])
        if self._preprocess is not None:
            crops = self._preprocess(crops.astype(np.float32))
        if self.from_logits:
            probs = crop_probabilities(self.model, crops)[self.output].numpy()
        else:
            flat = crops.reshape((-1,) + crops.shape[2:])
            probs = np.asarray(model_outputs(self.model, flat)[self.output], np.float32)
            probs = probs.reshape(crops.shape[0], crops.shape[1], -1).mean(axis=1)
        return probs @ self._to_s3


def data_scenes(batch) -> np.ndarray:
    """S3 probabilities carried by the test data (meta CSV or TFRecords): batch["probs3"]."""
    return np.asarray(batch["probs3"], np.float32)


class IsnEnsemble:
    """ISNs(T, C, S3): one geolocation model per S3 concept, chosen per image by its scene.

    Args:
      models: dict concept name ("indoor", "natural", "urban") -> Keras model; all three needed,
        all with the same geo outputs.
      scenes: callable batch -> float [batch, 3] S3 probabilities (`data_scenes`, `ModelScenes`).
    """

    def __init__(self, models: dict, scenes=data_scenes):
        missing = [c for c in CONCEPTS if c not in models]
        unknown = [c for c in models if c not in CONCEPTS]
        if missing or unknown:
            raise InputError(f"ISN models given for {sorted(models)}; expected exactly {list(CONCEPTS)}")
        geo_outputs = {c: sorted(n for n in output_sizes(m) if n != SCENE) for c, m in models.items()}
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
