"""`python tools/build_tfrecords.py` from a clone: the same command as `python -m geoest.build_tfrecords` (see there)."""
from geoest import cli
from geoest.build_tfrecords import main

if __name__ == "__main__":
    cli.run(main)
