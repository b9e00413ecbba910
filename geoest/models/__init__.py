"""§3.3 networks: backbones, the multi-output geolocation model and its losses.

    from geoest.models import build_model, make_losses, BACKBONES
    model = build_model(partitionings, backbone="resnet101v2", image_size=224, scene_classes=None)
"""
from geoest.models.backbones import BACKBONES
from geoest.models.geo_model import SCENE_CLASSES, SCENE_HEAD, build_model, head_sizes, output_sizes
from geoest.models.losses import (DistanceAwareCrossEntropy, SparseCrossEntropy, Top1Accuracy, add_weight_decay,
                                  make_losses)

__all__ = ["BACKBONES", "SCENE_CLASSES", "SCENE_HEAD", "DistanceAwareCrossEntropy", "SparseCrossEntropy",
           "Top1Accuracy", "add_weight_decay",
           "build_model", "head_sizes", "make_losses", "output_sizes"]
