"""The meta CSV's column names, defined once: the published Im2GPS layout and the 365 probabilities."""
from geoest.scene import columns
from geoest.scene.places365 import CONCEPTS


def test_the_published_layout_and_the_probability_columns():
    assert columns.META_COLUMNS == ("IMG_ID", "AUTHOR", "LAT", "LON", "S3_Label", "S16_Label", "S365_Label",
                                    "Prob_indoor", "Prob_natural", "Prob_urban")
    assert columns.PROB_COLUMNS == tuple(f"Prob_{c}" for c in CONCEPTS)
    assert columns.PROBS365_COLUMNS[0] == "prob365_0" and columns.PROBS365_COLUMNS[-1] == "prob365_364"
    assert len(set(columns.PROBS365_COLUMNS)) == 365 and columns.prob365_columns(3) == ("prob365_0", "prob365_1",
                                                                                        "prob365_2")
