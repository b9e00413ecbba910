"""§3.3 networks: backbones, the multi-output geolocation model and its losses.

    from geoest.models import build_model, make_losses, BACKBONES
    model = build_model(partitionings, backbone="resnet101v2", image_size=224, scene_classes=None)
    inference = build_inference_model(model, names, hierarchy.parents, top_k=5)   # §3.4 on the device

Imports Keras, gin, numpy and the geo core only (no TensorFlow under another Keras backend).
"""
from geoest.heads import SCENE_HEAD, output_sizes
from geoest.models.backbones import BACKBONES
from geoest.models.geo_model import IMAGE_DTYPE, build_model, head_sizes, require_uint8_images
from geoest.models.inference_model import build_inference_model, locate_cells, mean_crop_probabilities
from geoest.models.losses import (DistanceAwareCrossEntropy, SparseCrossEntropy, Top1Accuracy, add_weight_decay,
                                  make_losses)

__all__ = ["BACKBONES", "DistanceAwareCrossEntropy", "IMAGE_DTYPE", "SCENE_HEAD",
           "SparseCrossEntropy", "Top1Accuracy", "add_weight_decay", "build_inference_model", "build_model", "head_sizes",
           "locate_cells", "make_losses", "mean_crop_probabilities", "output_sizes", "require_uint8_images"]
