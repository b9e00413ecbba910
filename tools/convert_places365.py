"""`python tools/convert_places365.py` from a clone: the same command as `python -m geoest.convert_places365` (see there)."""
from geoest import cli
from geoest.convert_places365 import main

if __name__ == "__main__":
    cli.run(main)
