"""The test photos (§4) as batches of numpy arrays, from TFRecords or from image files and a meta
CSV, each with its three crops, true location and scene labels; and what a test set's results
depend on (`test_set_identity`).

A batch: "crops" uint8 [B, 3, S, S, 3], "id" [B], "lat", "lon" float [B] degrees, "probs3"
float [B, 3] S3 scene probabilities (NaN unknown), "scene_labels" int64 [B, 3] (S3 / S16 / S365,
-1 unknown).
"""
import os
import pathlib

import numpy as np

from geoest.data.meta_csv import read_meta_csv
from geoest.files import digest, file_identity
from geoest.photo_paths import OUTSIDE_LINK, link_leaves
from geoest.scene.places365 import CONCEPTS, LEVELS, scene_label

MISSING = "missing file"


def record_batches(file_pattern, batch_size: int, image_size: int, scene_hierarchy=None, skip_log=None):
    """Test batches from TFRecords (`geoest.data.pipeline.eval_dataset`), as numpy dicts."""
    from geoest.data.pipeline import eval_dataset   # loads TensorFlow

    return eval_dataset(file_pattern, batch_size, image_size=image_size, scene_matrices=scene_hierarchy,
                        skip_log=skip_log).as_numpy_iterator()


def image_batches(images_dir, meta_csv, batch_size: int, image_size: int, scene_hierarchy=None, skip_log=None,
                  allow_absolute_paths: bool = False, follow_links: bool = False, min_side: int | None = None):
    """Test batches from image files and a meta CSV (IMG_ID = path under images_dir, LAT, LON and
    optional scene columns), as numpy dicts; the number of images is `len(read_meta_csv(...))`.

    Scene probabilities: the Prob_* columns, else the prob365_* columns aggregated to S3 with
    `scene_hierarchy`, else unknown (NaN). Scene labels ("scene_labels" int64 [B, 3], S3 / S16 /
    S365): the S*_Label columns, else the argmax of the probabilities at that level, else -1.
    An IMG_ID that is absolute (unless `allow_absolute_paths`) or whose ".." leaves images_dir is
    never opened; it is skipped and named in `skip_log`, like a missing file, and so is a symbolic
    link in images_dir to a file outside it unless `follow_links` (those followed are counted in
    `skip_log.links_followed`). A photo whose shorter side is below `min_side` px (default
    `geoest.data.photo_checks.default_min_side(image_size)`; 0 answers any size) is skipped and
    named too.
    """
    from geoest.data.photo_checks import default_min_side   # these three load TensorFlow
    from geoest.data.pipeline import image_dataset
    from geoest.data.skip_log import SkipLog

    meta = read_meta_csv(meta_csv)
    probs3 = meta.probs3
    if probs3 is None and meta.probs365 is not None and scene_hierarchy is not None:
        probs3 = scene_hierarchy.aggregate(meta.probs365, "S3")
    if probs3 is None:
        probs3 = np.full((len(meta), len(CONCEPTS)), np.nan, np.float32)
    labels = _meta_scene_labels(meta, probs3, scene_hierarchy)
    skip_log = skip_log if skip_log is not None else SkipLog()
    paths, outside = meta.image_paths(images_dir, allow_absolute_paths)
    for k, reason in outside.items():
        skip_log.add(meta.ids[k], reason)
    row_of = {}
    for k, path in paths.items():
        leaves = not os.path.isabs(meta.ids[k]) and link_leaves(images_dir, path)
        if leaves and not follow_links:
            skip_log.add(meta.ids[k], OUTSIDE_LINK)        # never opened
        elif pathlib.Path(path).is_file():
            row_of[path] = k
            skip_log.links_followed += leaves
        else:
            skip_log.add(meta.ids[k], MISSING)
    if not row_of:
        return
    ids = np.array(meta.ids)
    min_side = default_min_side(image_size) if min_side is None else min_side
    for batch in image_dataset(list(row_of), batch_size, image_size=image_size, skip_log=skip_log,
                               min_side=min_side).as_numpy_iterator():
        rows = np.array([row_of[p.decode()] for p in batch["id"]])
        yield {"crops": batch["crops"], "id": ids[rows], "lat": meta.lat_deg[rows], "lon": meta.lon_deg[rows],
               "probs3": probs3[rows], "scene_labels": labels[rows]}


def _meta_scene_labels(meta, probs3, scene_hierarchy=None) -> np.ndarray:
    """int64 [n, 3] S3 / S16 / S365 labels of a meta CSV's photos (as the records' pipeline gives
    them): the S*_Label columns, else the argmax of the probabilities at that level, else -1."""
    labels = np.full((len(meta), len(LEVELS)), -1, np.int64) if meta.scene_labels is None else meta.scene_labels
    derived = {"S3": probs3}
    if meta.probs365 is not None:
        derived["S365"] = meta.probs365
        if scene_hierarchy is not None:
            derived["S16"] = scene_hierarchy.aggregate(meta.probs365, "S16")
    labels = labels.copy()
    for k, level in enumerate(LEVELS):
        if level in derived:
            labels[:, k] = np.where(labels[:, k] >= 0, labels[:, k], scene_label(derived[level]))
    return labels


def test_set_identity(test_records=None, images_dir=None, meta_csv=None) -> dict:
    """What an evaluation's results depend on in its test set: each TFRecord file's path, size and
    modification time; or the meta CSV's content digest and the images folder."""
    if test_records:
        import tensorflow as tf

        return {"records": [file_identity(f) for f in sorted(tf.io.gfile.glob(test_records))]}
    with open(meta_csv, "rb") as f:
        return {"meta_csv": digest(iter(lambda: f.read(1 << 20), b"")),
                "images_dir": str(pathlib.Path(images_dir).resolve())}


__all__ = ["MISSING", "image_batches", "record_batches", "test_set_identity"]
