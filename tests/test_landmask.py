"""geoest.geo.landmask: land and sea from the embedded coastline mask."""
import numpy as np

from geoest.geo.landmask import is_land


def test_land_mask_knows_land_from_sea():
    land = [(48.86, 2.35), (-23.55, -46.63), (35.68, 139.65), (-1.29, 36.82), (40.0, -100.0), (-25.0, 134.0)]
    sea = [(30.0, -40.0), (0.0, -140.0), (-30.0, 80.0), (50.0, -30.0), (10.0, 160.0), (-45.0, -120.0)]
    assert is_land(*np.transpose(land)).all()
    assert not is_land(*np.transpose(sea)).any()
