"""The geographic core: S2 partitionings (§3.1), their hierarchy and Class2GPS (§3.4), distances."""
from geoest.geo.distance import THRESHOLDS_KM, accuracy_at, great_circle_km, great_circle_km_tf
from geoest.geo.hierarchy import Hierarchy
from geoest.geo.partitioning import Partitioning, read_partitionings, validate_coordinates

__all__ = ["Partitioning", "Hierarchy", "great_circle_km", "great_circle_km_tf", "accuracy_at",
           "THRESHOLDS_KM", "read_partitionings", "validate_coordinates"]
