"""The meta CSV's column names (§3.2 scene labels beside each photo's coordinates).

A meta CSV has one row per photo: ``IMG_ID,LAT,LON`` and optional columns. The paper's authors
published per-image scene labels in the Im2GPS meta format
``IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban``
(S3_Label 0 indoor, 1 natural, 2 urban). ``tools/label_scenes.py --all_probs`` appends the
365 category probabilities as ``prob365_0`` ... ``prob365_364``. These names are defined here
once; `geoest.data.meta_csv.read_meta_csv` reads the files.
"""
from geoest.scene.places365 import CONCEPTS

ID_COLUMN, AUTHOR_COLUMN, LAT_COLUMN, LON_COLUMN = "IMG_ID", "AUTHOR", "LAT", "LON"
LABEL_COLUMNS = ("S3_Label", "S16_Label", "S365_Label")        # in places365.LEVELS order
PROB_COLUMNS = tuple(f"Prob_{concept}" for concept in CONCEPTS)  # S3 probabilities, CONCEPTS order
META_COLUMNS = (ID_COLUMN, AUTHOR_COLUMN, LAT_COLUMN, LON_COLUMN) + LABEL_COLUMNS + PROB_COLUMNS


def prob365_columns(num_categories: int = 365) -> tuple:
    """Names of the per-category probability columns: ``prob365_0`` ... ``prob365_364``."""
    return tuple(f"prob365_{i}" for i in range(num_categories))


PROBS365_COLUMNS = prob365_columns()
