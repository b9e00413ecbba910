"""Great-circle distance and accuracy at the paper's thresholds (§4, Table 6)."""
import numpy as np

EARTH_RADIUS_KM = 6371.0
THRESHOLDS_KM = (1, 25, 200, 750, 2500)  # street, city, region, country, continent (Table 6)


def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Haversine distance on a sphere of radius 6371.0 km.

    Args:
      lat1, lon1, lat2, lon2: float arrays (broadcastable) in degrees.
    Returns:
      np.float64 array of distances in km.
    """
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=np.float64))
                              for a in (lat1, lon1, lat2, lon2))
    h = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def great_circle_km_tf(lat1, lon1, lat2, lon2):
    """`great_circle_km` in TensorFlow (float64 inside, float64 km out)."""
    import tensorflow as tf

    rad = np.pi / 180.0
    lat1, lon1, lat2, lon2 = (tf.cast(a, tf.float64) * rad for a in (lat1, lon1, lat2, lon2))
    h = (tf.sin((lat2 - lat1) / 2) ** 2
         + tf.cos(lat1) * tf.cos(lat2) * tf.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * tf.asin(tf.sqrt(tf.clip_by_value(h, 0.0, 1.0)))


def accuracy_at(dist_km, thresholds=THRESHOLDS_KM) -> dict:
    """Fraction of predictions within each radius: {1: f, 25: f, 200: f, 750: f, 2500: f}.

    Args:
      dist_km: float array [N] of great-circle errors in km (N > 0).
    """
    dist_km = np.asarray(dist_km, dtype=np.float64).ravel()
    if dist_km.size == 0:
        raise ValueError("accuracy_at needs at least one distance")
    return {t: float(np.mean(dist_km <= t)) for t in thresholds}
