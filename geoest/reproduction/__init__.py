"""The paper's whole recipe, from the URL lists and the published meta to both halves of Table 6:
`recipe` (the stages as data) and `run` (stage manifests, resume, the report).

Importing this package does not import TensorFlow: every stage is a geoest command of its own.
"""
from geoest.reproduction.recipe import Settings, Stage, paper_recipe
from geoest.reproduction.run import reproduce, sequence_text

__all__ = ["Settings", "Stage", "paper_recipe", "reproduce", "sequence_text"]
