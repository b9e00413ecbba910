"""`python tools/scene_stats.py` from a clone: the same command as `python -m geoest.scene_stats` (see there)."""
from geoest import cli
from geoest.scene_stats import main

if __name__ == "__main__":
    cli.run(main)
