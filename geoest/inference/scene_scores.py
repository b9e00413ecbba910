"""Scores of answers already made (§4): the great-circle accuracy of a results file in the published
layout, over all photos and per S3 scene concept (Tables 6 and 4), and an MTN's scene top-1
accuracy (§3.3). `geoest.geo.scoring` reads and writes the results files."""
import numpy as np

from geoest.data.meta_csv import read_meta_csv
from geoest.errors import InputError
from geoest.geo.scoring import read_results_csv, summarize
from geoest.scene.columns import LABEL_COLUMNS
from geoest.scene.places365 import CONCEPTS, LEVELS


def scene_scores(dist_km, scene=None) -> dict:
    """{"all": summarize(dist_km)} plus, with `scene` (int [N] S3 concept index, -1 unknown), one
    `summarize` per S3 concept (Table 4) over its photos.

    Args:
      dist_km: float [N] great-circle errors in km.
    """
    scores = {"all": summarize(dist_km)}
    if scene is not None:
        scores.update({concept: summarize(dist_km[scene == k]) for k, concept in enumerate(CONCEPTS)})
    return scores


def score_file(predictions_csv, meta_csv=None) -> dict:
    """Scores of a results file in the published layout (`geoest.geo.scoring.read_results_csv`):
    {"all": summarize(...)} plus, with an Im2GPS-format meta CSV, one per S3 concept (Table 4) —
    what summary.json holds for the output that wrote the file.

    Images of the results file missing from the meta CSV, or a meta CSV without S3_Label, are an
    error naming the first one.
    """
    results = read_results_csv(predictions_csv)
    ids, dist = results.ids, results.dist_km
    if meta_csv is None:
        return scene_scores(dist)
    meta = read_meta_csv(meta_csv, author=False, probs365=False, required=[LABEL_COLUMNS[0]])  # S3_Label
    scene = dict(zip(meta.ids, meta.scene_labels[:, 0].tolist()))
    missing = [i for i in ids if i not in scene]
    if missing:
        raise InputError(f"{meta_csv}: no row for image {missing[0]!r} of "
                         f"{predictions_csv} ({len(missing)} images missing)")
    return scene_scores(dist, np.array([scene[i] for i in ids]))


def scene_accuracy(predicted, labels, level: str) -> dict:
    """Scene top-1 accuracy of an MTN (§3.3) at its level over the images with a label there.

    Args:
      predicted: int [N] predicted scene class; labels: int [N, 3] S3 / S16 / S365 labels (-1 unknown).
    Returns:
      {"level": level, "count": labelled images, "top1": fraction or None}.
    """
    truth = np.asarray(labels)[:, LEVELS.index(level)]
    known = truth >= 0
    top1 = float(np.mean(np.asarray(predicted)[known] == truth[known])) if known.any() else None
    return {"level": level, "count": int(known.sum()), "top1": top1}


__all__ = ["scene_accuracy", "scene_scores", "score_file"]
