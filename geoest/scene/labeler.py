"""§3.2 scene labelling: a Places365 classifier over photos, written in the Im2GPS meta format.

The paper's scene model is the Places365 ResNet-152 of CSAILVision/places365, converted from its
Caffe release by `geoest.scene.caffe` (``python -m geoest.convert_places365``, see docs/scene_classifier.md)
into `default_weights_path`: a ``.keras`` model taking uint8 RGB photos, with a manifest beside it
(`read_model_manifest`). Any Keras model that maps ``[batch, S, S, 3]`` images to 365 probabilities
can stand in (saved as ``.keras``); one taking float images gets them in its `PREPROCESSING` convention.
"""
import concurrent.futures
import csv
import dataclasses
import json
import logging
import os
import pathlib

import numpy as np
from PIL import Image
from tqdm import tqdm

from geoest import interrupt
from geoest.errors import InputError
from geoest.files import ENCODING, check_output, claim_outputs, digest, manifest_path, writing
from geoest.photo_paths import OUTSIDE_LINK, link_leaves, path_inside
from geoest.scene import columns
from geoest.scene.caffe import CAFFE_IMAGENET, weights_digest
from geoest.scene.places365 import SceneHierarchy, default_cache_dir

NUM_CATEGORIES = 365
WEIGHTS_FILE = "resnet152_places365.keras"  # the converted release in the Places365 cache
PLACES365_MODEL = "places365"   # --scene_model's name for it

_IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_CAFFE_MEAN_BGR = np.array(CAFFE_IMAGENET.mean, dtype=np.float32)   # the Caffe release's input

# Input conventions of converted models: float32 RGB images in [0, 255] -> model input.
PREPROCESSING = {
    "caffe": lambda x: x[..., ::-1] - _CAFFE_MEAN_BGR,                   # Caffe release
    "torch": lambda x: (x / 255.0 - _IMAGENET_MEAN_RGB) / _IMAGENET_STD_RGB,  # PyTorch models
    "tf": lambda x: x / 127.5 - 1.0,                                     # [-1, 1]
    "none": lambda x: x,                                                 # [0, 255]
}

_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
log = logging.getLogger(__name__)


def default_weights_path(places365_dir=None) -> pathlib.Path:
    """Where the tools look for the scene classifier by default: `WEIGHTS_FILE` in the Places365 directory."""
    return pathlib.Path(places365_dir or default_cache_dir()) / WEIGHTS_FILE


def load_scene_classifier(weights, *, num_categories: int = NUM_CATEGORIES):
    """Loads a scene classifier saved as a Keras model.

    Args:
      weights: a ``.keras`` model whose single output is ``num_categories`` probabilities (the
        converted release, `default_weights_path`).
      num_categories: the expected output width.
    Raises:
      InputError: the file is missing or unreadable, or the model's shapes do not fit.
    """
    import keras

    path = pathlib.Path(weights)
    if not path.is_file():
        raise InputError(f"{path}: no such scene classifier file (geoest ships no weights; convert the "
                         f"official release: python -m geoest.convert_places365 --download)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"{path}: cannot load it as a Keras model ({e})") from e
    if len(model.outputs) != 1 or model.outputs[0].shape[-1] != num_categories:
        raise InputError(f"{path}: expected one output of {num_categories} scene "
                         f"probabilities, got {[tuple(o.shape) for o in model.outputs]}")
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4 \
            or model.inputs[0].shape[-1] != 3:
        raise InputError(f"{path}: expected one image input [batch, S, S, 3], got "
                         f"{[tuple(i.shape) for i in model.inputs]}")
    return model


def read_model_manifest(weights, model) -> dict | None:
    """The conversion manifest beside a scene classifier file (`geoest.scene.conversion.convert`), when it
    describes these weights (its weights digest is `model`'s); None otherwise."""
    path = manifest_path(weights)
    try:
        manifest = json.loads(path.read_text(encoding=ENCODING))
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("weights_sha256") == weights_digest(model) else None


def takes_uint8(model) -> bool:
    """Whether a model takes uint8 images and does its preprocessing itself (the converted release)."""
    return str(model.inputs[0].dtype).endswith("uint8")


def model_image_size(model, default: int = 224) -> int:
    """The square input side a model was built for, or ``default`` if it accepts any."""
    height, width = model.inputs[0].shape[1:3]
    if height is None or width is None:
        return default
    if height != width:
        raise InputError(f"scene classifier input {height}x{width}: expected a square input")
    return int(height)


def load_image(path, image_size: int) -> np.ndarray:
    """Decodes an image file to uint8 RGB [image_size, image_size, 3], the whole image resized.

    Raises:
      OSError, ValueError, SyntaxError, DecompressionBombError: the file is unreadable.
    """
    with Image.open(path) as image:
        image.draft("RGB", (image_size, image_size))  # JPEG: decode at a reduced scale
        image = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def classify(model, images, preprocess: str = "caffe") -> np.ndarray:
    """Scene probabilities of a batch of images.

    Args:
      model: a scene classifier (`load_scene_classifier`).
      images: uint8 or float RGB [batch, S, S, 3] in [0, 255].
      preprocess: a key of `PREPROCESSING`, the input convention of a model taking float images
        (a model taking uint8 images gets them as they are).
    Returns:
      float32 [batch, n_categories], rows summing to 1.
    Raises:
      InputError: unknown ``preprocess``, or the model's outputs are not probabilities.
    """
    if preprocess not in PREPROCESSING:
        raise InputError(f"preprocess {preprocess!r}: expected one of {', '.join(PREPROCESSING)}")
    if takes_uint8(model):
        inputs = np.asarray(images, dtype=np.uint8)
    else:
        inputs = PREPROCESSING[preprocess](np.asarray(images, dtype=np.float32))
    probs = model.predict_on_batch(inputs)
    if isinstance(probs, dict):
        (probs,) = probs.values()
    probs = np.asarray(probs, dtype=np.float32)
    sums = probs.sum(axis=-1)
    if probs.min() < -1e-6 or np.abs(sums - 1.0).max() > 1e-3:
        raise InputError(f"scene classifier outputs are not probabilities (row sums "
                         f"{sums.min():.4g}..{sums.max():.4g}); end the model with a softmax")
    return probs


@dataclasses.dataclass
class LabelSummary:
    """What a `label_images` run did."""
    output_csv: pathlib.Path
    errors_csv: pathlib.Path
    labeled: int = 0            # rows written by this run
    resumed: int = 0            # rows already in output_csv / errors_csv, skipped
    failed: list = dataclasses.field(default_factory=list)  # (img_id, reason) of this run
    links_followed: int = 0     # photos of this run read through a link out of images_dir (follow_links)


def errors_path(output_csv) -> pathlib.Path:
    """Where unreadable images are listed: ``labels.csv`` -> ``labels.errors.csv``."""
    output_csv = pathlib.Path(output_csv)
    return output_csv.with_name(output_csv.stem + ".errors.csv")


def _ids_done(path: pathlib.Path, header: list) -> set | None:
    """IMG_IDs already in a CSV we append to; None if it has to be started.

    A last line cut off by an interruption is dropped. A header other than ``header`` means
    another run's file, which is not ours to overwrite.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
    with open(path, newline="", encoding=ENCODING) as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            return None
        if first != header:
            raise InputError(f"{path} exists with other columns than this run writes "
                             f"({len(first)} vs {len(header)}); delete it or choose another "
                             f"output path")
        return {row[0] for row in reader if row}


def _open_for_append(path: pathlib.Path, header: list):
    """Opens a CSV to append to; returns (file, writer, ids already there)."""
    done = _ids_done(path, header)
    f = open(path, "a" if done is not None else "w", newline="", encoding=ENCODING)
    writer = csv.writer(f)
    if done is None:
        writer.writerow(header)
    return f, writer, done or set()


def _format(values) -> list:
    return [f"{v:.6g}" for v in values]


def label_images(model, hierarchy: SceneHierarchy, images_dir, rows, output_csv, *,
                 batch_size: int = 32, preprocess: str = "caffe", image_size: int = 224,
                 all_probs: bool = False, workers: int | None = None,
                 allow_absolute_paths: bool = False, follow_links: bool = False, overwrite: bool = False,
                 model_manifest: dict | None = None) -> LabelSummary:
    """§3.2: labels the images of a meta CSV's rows with S3 / S16 / S365 scene labels.

    Writes ``output_csv`` in the Im2GPS meta format (`columns.META_COLUMNS`, plus
    ``prob365_0..`` with ``all_probs``), one row per readable image, in meta order. Rows are
    appended batch by batch, so an interrupted run resumes where it stopped: images already
    in ``output_csv`` or in its errors file (`errors_path`) are skipped. Unreadable images are
    listed in the errors file (``IMG_ID,error``) and do not stop the run. A manifest beside the
    output (``output_csv.json``) records the model's weights, input convention and size and the
    scene hierarchy, so a run resumes only what the same classifier started; rows of another are
    never mixed in.

    Args:
      model: a scene classifier with ``hierarchy.num_categories`` probability outputs.
      hierarchy: the Places365 scene hierarchy (`load_scene_hierarchy`).
      images_dir: root of the images; image paths are ``images_dir / IMG_ID``.
      rows: the photos, a `geoest.data.meta_csv.Meta` (`read_meta_csv`) or any object with `ids`
        (str [n]), `lat_deg`, `lon_deg` (float [n], degrees), optional `authors` (str [n] or
        None: written as "") and `path` (the meta CSV, never overwritten).
      output_csv: the meta CSV to write (appended to when resuming).
      batch_size: images per model call.
      preprocess: the input convention of a model taking float images, a key of `PREPROCESSING`.
      image_size: input side for models that accept any size.
      all_probs: also write the 365 category probabilities.
      workers: image-decoding threads (default: CPU count).
      allow_absolute_paths: read absolute IMG_IDs as they are; otherwise they, and IMG_IDs
        whose ".." leaves images_dir, are listed as errors and never opened.
      follow_links: read photos through symbolic links in images_dir that lead outside it;
        otherwise they are listed as errors and never opened.
      overwrite: start afresh over an output written by another classifier (or by no recorded
        run) instead of refusing.
      model_manifest: the model's conversion manifest (`read_model_manifest`), recorded in the
        output's manifest.
    Returns:
      A `LabelSummary`.
    Raises:
      InputError: bad arguments, or an existing output that another classifier, input convention
        or hierarchy wrote (naming what changed), without `overwrite`.
    """
    if preprocess not in PREPROCESSING:
        raise InputError(f"preprocess {preprocess!r}: expected one of {', '.join(PREPROCESSING)}")
    if batch_size < 1:
        raise InputError(f"batch_size {batch_size}: expected a positive number")
    size = model_image_size(model, image_size)
    images_dir = pathlib.Path(images_dir)
    output_csv = pathlib.Path(output_csv)
    output_csv.parent.mkdir(parents=True, exist_ok=True)
    check_output(output_csv, inputs=[getattr(rows, "path", None)], flag="output_csv")
    summary = LabelSummary(output_csv=output_csv, errors_csv=errors_path(output_csv))

    labelled_by = {"scene model weights": weights_digest(model),
                   "preprocess": "inside the model (uint8 input)" if takes_uint8(model) else preprocess,
                   "image size": size,
                   "scene hierarchy": digest([hierarchy.s3_matrix.tobytes(), hierarchy.s16_matrix.tobytes()])}
    if model_manifest:
        labelled_by["scene model"] = model_manifest
    resume = claim_outputs(manifest_path(output_csv), labelled_by, [output_csv, summary.errors_csv],
                           overwrite=overwrite, command="label_scenes")
    if not resume:   # nothing there, or --overwrite: start afresh
        output_csv.unlink(missing_ok=True)
        summary.errors_csv.unlink(missing_ok=True)
    header = list(columns.META_COLUMNS)
    if all_probs:
        header += columns.prob365_columns(hierarchy.num_categories)
    out, writer, labeled_before = _open_for_append(output_csv, header)
    err, err_writer, failed_before = _open_for_append(summary.errors_csv, [columns.ID_COLUMN, "error"])
    done = labeled_before | failed_before
    authors = getattr(rows, "authors", None) or [""] * len(rows.ids)
    # IMG_ID, AUTHOR, LAT, LON as written: the shortest text that reads back as the same float64.
    todo = [(image_id, author, repr(float(lat)), repr(float(lon)))
            for image_id, author, lat, lon in zip(rows.ids, authors, rows.lat_deg, rows.lon_deg)
            if image_id not in done]
    summary.resumed = len(rows.ids) - len(todo)
    if summary.resumed:
        log.info("%s: resuming, %d of %d images already done", output_csv, summary.resumed,
                 len(rows.ids))

    def load(row):
        """(row, image or None, reason or None, whether read through a link out of images_dir)."""
        path, outside = path_inside(images_dir, row[0], allow_absolute_paths)
        if path is None:
            return row, None, outside, False          # never opened
        leaves = not os.path.isabs(row[0]) and link_leaves(images_dir, path)
        if leaves and not follow_links:
            return row, None, OUTSIDE_LINK, False     # never opened
        try:
            return row, load_image(path, size), None, leaves
        except _UNREADABLE as e:
            return row, None, f"{type(e).__name__}: {e}", False

    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool, interrupt.deferred(), \
            writing(output_csv, "scene label rows"), \
            out, err, tqdm(total=len(todo), unit="img", desc="scene labels") as progress:
        pending = pool.map(load, batches[0]) if batches else None
        for i in range(len(batches)):
            loaded = list(pending)
            if i + 1 < len(batches):  # decode the next batch while the model runs
                pending = pool.map(load, batches[i + 1])
            for row, _, reason, _ in (item for item in loaded if item[1] is None):
                summary.failed.append((row[0], reason))
                err_writer.writerow([row[0], reason])
            good = [(row, image) for row, image, _, _ in loaded if image is not None]
            summary.links_followed += sum(item[3] for item in loaded)
            if good:
                probs365 = classify(model, np.stack([image for _, image in good]), preprocess)
                probs3 = hierarchy.aggregate(probs365, "S3")
                labels = hierarchy.labels(probs365)
                for j, (row, _) in enumerate(good):
                    line = list(row) + [int(labels[level][j]) for level in ("S3", "S16", "S365")]
                    line += _format(probs3[j])
                    if all_probs:
                        line += _format(probs365[j])
                    writer.writerow(line)
                summary.labeled += len(good)
            out.flush()
            err.flush()
            progress.update(len(loaded))
            progress.set_postfix(failed=len(summary.failed))
            if interrupt.requested():       # every row so far is written and flushed
                pool.shutdown(cancel_futures=True)
                interrupt.stop_if_requested(f"{summary.resumed + summary.labeled + len(summary.failed)} of "
                                            f"{len(rows.ids)} photos done in {output_csv}")
    return summary
