"""Scene statistics over a meta CSV's rows: images per concept and each ISN's training-set size
(§3.3, §4)."""
import numpy as np

from geoest.errors import InputError
from geoest.scene.places365 import CONCEPTS

TAU_S = 0.3  # §4: an ISN trains on the images whose concept probability exceeds tau_S


def scene_statistics(s3_labels, probs3, tau_s: float = TAU_S) -> dict:
    """Images per concept and the training-set size of each ISN at ``tau_s`` (§3.3, §4).

    An image counts for the ISN of a concept when its probability of that concept is greater
    than ``tau_s``, so with tau_S = 0.3 an image may train up to three ISNs (§4 reports
    1.80 M indoor, 1.42 M natural and 2.34 M urban images on MP-16).

    Args:
      s3_labels: int [N] S3 labels (0 indoor, 1 natural, 2 urban), the meta CSV's S3_Label.
      probs3: float [N, 3] S3 probabilities in CONCEPTS order, its Prob_* columns.
      tau_s: the concept-probability threshold.
    Returns:
      {"count": N, "tau_s": tau_s, "images_per_concept": {"indoor": n, ...} (by S3_Label),
       "isn_images": {"indoor": n, ...} (Prob_concept > tau_s)}.
    Raises:
      InputError: the shapes do not fit, or a label is not 0, 1 or 2 (naming its row).
    """
    labels = np.asarray(s3_labels)
    probs3 = np.asarray(probs3, np.float64)
    if probs3.shape != (len(labels), len(CONCEPTS)):
        raise InputError(f"scene statistics: {len(labels)} S3 labels but S3 probabilities of shape "
                         f"{probs3.shape}; expected [{len(labels)}, {len(CONCEPTS)}]")
    bad = ~np.isin(labels, np.arange(len(CONCEPTS)))
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(f"scene statistics: row {row + 1}: S3 label {labels[row].item()!r}; expected 0 (indoor), "
                         "1 (natural) or 2 (urban)")
    per_concept = np.bincount(labels.astype(np.int64), minlength=len(CONCEPTS))
    isn = (probs3 > tau_s).sum(axis=0)
    return {"count": int(len(labels)), "tau_s": float(tau_s),
            "images_per_concept": {c: int(n) for c, n in zip(CONCEPTS, per_concept)},
            "isn_images": {c: int(n) for c, n in zip(CONCEPTS, isn)}}
