"""geoest: geolocation estimation of photos with a hierarchical model and scene classification.

Implements Müller-Budack, Pustu-Iren and Ewerth, ECCV 2018. Subpackages follow the paper:
`geoest.geo` (§3.1 cells, §3.4 hierarchy and Class2GPS, distances), `geoest.scene` (§3.2),
`geoest.models` (§3.3), `geoest.data` (§4 input pipeline, §3.4 three crops).

Importing `geoest` or `geoest.geo` does not import TensorFlow; the TF functions import it
when first called.
"""
from geoest.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
