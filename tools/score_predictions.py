"""`python tools/score_predictions.py` from a clone: the same command as `python -m geoest.score_predictions` (see there)."""
from geoest import cli
from geoest.score_predictions import main

if __name__ == "__main__":
    cli.run(main)
