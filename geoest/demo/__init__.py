"""The embedded demo: a synthetic photo collection shaped like MP-16, and the paper end to end on it.

    python -m geoest.demo --output_dir=demo_output     # what `make demo` runs

`geoest.demo.data.generate` writes the photos (JPEG) and Im2GPS-format meta CSVs; the cities
they cluster around are in `geoest.demo.cities`.
"""
