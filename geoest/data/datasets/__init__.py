"""TFDS builders (manual download) for MP-16, Im2GPS, Im2GPS3k and YFCC25600.

Importing this package registers them: `tfds build mp16 --imports=geoest.data.datasets
--manual_dir=DIR`, then `tfds.load("mp16")`. See `geo_photos.py` for the folder layout.
"""
from geoest.data.datasets.geo_photos import Im2gps, Im2gps3k, Mp16, Yfcc25600

__all__ = ["Mp16", "Im2gps", "Im2gps3k", "Yfcc25600"]
