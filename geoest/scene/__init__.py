"""§3.2 scene classification: Places365 categories (S365) aggregated to S16 and S3.

`places365` reads the official category list and scene hierarchy and aggregates
probabilities; `columns` names the Im2GPS meta format's columns and `statistics` counts its scene labels;
`labeler` (imports Keras) runs a Places365 classifier over photos.
"""
from geoest.scene.columns import META_COLUMNS, PROB_COLUMNS, prob365_columns
from geoest.scene.places365 import (CONCEPTS, LEVELS, SceneHierarchy, fetch_places365_files,
                                    load_default_hierarchy, load_scene_hierarchy,
                                    resolve_places365_files)
from geoest.scene.statistics import TAU_S, scene_statistics

__all__ = ["CONCEPTS", "LEVELS", "META_COLUMNS", "PROB_COLUMNS", "TAU_S", "SceneHierarchy",
           "fetch_places365_files", "load_default_hierarchy", "load_scene_hierarchy",
           "prob365_columns", "resolve_places365_files", "scene_statistics"]
