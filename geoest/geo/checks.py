"""Checks of the values that say how sure an answer is: a region's probability mass p, the back-off
threshold q, the resolution cap K and the radii R of P(error <= R).

Each check returns the value as plain floats or raises `geoest.errors.RefusedValue` (an `InputError`)
naming the value by its symbol: `p=1.0: ...`, `q=1.5: ...`, `K=0: ...`, `R=-5.0: ...`. The mains,
which take these values from flags, say the same with the flag's name (`geoest.cli`).
"""
import math

import numpy as np

from geoest.errors import RefusedValue
from geoest.geo.cell_outlines import FACE_EXTENT_KM


def plain_values(values) -> list:
    """A number or a sequence of them as a list of plain Python values (for checks that name them)."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values, dtype=object).ravel().tolist()]


def check_masses(masses) -> tuple:
    """Region masses p as a tuple of floats, each strictly inside (0, 1)."""
    out = []
    for p in masses:
        try:
            value = float(p)
        except (TypeError, ValueError):
            raise RefusedValue("p", "expected numbers strictly between 0 and 1", p) from None
        if not 0.0 < value < 1.0:
            raise RefusedValue("p", "a region's probability mass must lie strictly between 0 and 1", p)
        out.append(value)
    if not out:
        raise RefusedValue("p", "give at least one probability mass, e.g. 0.5,0.9")
    return tuple(out)


def check_min_confidence(q) -> float:
    """The back-off threshold q in [0, 1]."""
    try:
        value = float(q)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise RefusedValue("q", "expected a probability in [0, 1]", q)
    return value


def check_max_resolution(km) -> float:
    """The resolution cap K in km: > 0 and at most an S2 face's extent."""
    if km is None or not 0.0 < float(km) <= FACE_EXTENT_KM:
        raise RefusedValue("K", f"expected a distance in km above 0 and at most {FACE_EXTENT_KM:,.0f} "
                           "(an S2 face, the coarsest area there is)", km)
    return float(km)


def check_radii(radii_km) -> tuple:
    """Radii R (km) as a tuple of floats, each > 0 (one number or several)."""
    out = []
    for r in plain_values(radii_km):
        try:
            value = float(r)
        except (TypeError, ValueError):
            raise RefusedValue("R", "expected distances in km above 0", r) from None
        if not value > 0.0 or not math.isfinite(value):
            raise RefusedValue("R", "a radius must be a distance in km above 0", r)
        out.append(value)
    if not out:
        raise RefusedValue("R", "give at least one radius in km, e.g. 25,200")
    return tuple(out)


__all__ = ["check_masses", "check_max_resolution", "check_min_confidence", "check_radii", "plain_values"]
