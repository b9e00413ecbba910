"""`python tools/create_partitioning.py` from a clone: the same command as `python -m geoest.create_partitioning` (see there)."""
from geoest import cli
from geoest.create_partitioning import main

if __name__ == "__main__":
    cli.run(main)
