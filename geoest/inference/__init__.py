"""Inference (§3.4) and evaluation (§4): three crops, hierarchy f*, Class2GPS, ISN routing,
reports, GeoJSON maps and the SavedModel export.

Importing this package does not import TensorFlow; the functions that need it import it.
"""
from geoest.heads import SCENE_HEAD, output_sizes
from geoest.inference.core import HIERARCHY, Located, Locator, crop_probabilities, top_k
from geoest.inference.isn import IsnEnsemble, ModelScenes, data_scenes, route
from geoest.inference.modeldir import GeoModel, load_geo_model

__all__ = ["HIERARCHY", "SCENE_HEAD", "Located", "Locator", "crop_probabilities",
           "output_sizes", "top_k", "IsnEnsemble", "ModelScenes", "data_scenes", "route", "GeoModel",
           "load_geo_model"]
