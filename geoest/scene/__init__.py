"""§3.2 scene classification: Places365 categories (S365) aggregated to S16 and S3.

`places365` reads the official category list and scene hierarchy and aggregates
probabilities; `meta` is the Im2GPS meta format with scene labels and its statistics;
`labeler` (imports Keras) runs a Places365 classifier over photos.
"""
from geoest.scene.meta import META_COLUMNS, PROB_COLUMNS, TAU_S, prob365_columns, scene_statistics
from geoest.scene.places365 import (CONCEPTS, LEVELS, SceneHierarchy, fetch_places365_files,
                                    load_default_hierarchy, load_scene_hierarchy,
                                    resolve_places365_files)

__all__ = ["CONCEPTS", "LEVELS", "META_COLUMNS", "PROB_COLUMNS", "TAU_S", "SceneHierarchy",
           "fetch_places365_files", "load_default_hierarchy", "load_scene_hierarchy",
           "prob365_columns", "resolve_places365_files", "scene_statistics"]
