"""`python tools/label_scenes.py` from a clone: the same command as `python -m geoest.label_scenes` (see there)."""
from geoest import cli
from geoest.label_scenes import main

if __name__ == "__main__":
    cli.run(main)
