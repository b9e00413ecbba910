"""`python tools/draw_cells.py` from a clone: the same command as `python -m geoest.draw_cells` (see there)."""
from geoest import cli
from geoest.draw_cells import main

if __name__ == "__main__":
    cli.run(main)
