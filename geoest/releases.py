"""Third-party releases whose private internals geoest reads: outside the range it was checked on, a
command stops with one line saying which range to install."""
from geoest.errors import InputError


def check_release(package: str, version: str, checked, reads: str) -> None:
    """Refuses, in one line, a release of `package` outside `checked`.

    Args:
      package: the distribution name pip installs ("gin-config").
      version: its installed version string ("0.5.0").
      checked: ((major, minor) lowest checked, (major, minor) first unchecked).
      reads: what geoest relies on there, for the message.
    Raises:
      InputError: the version is outside the range or cannot be read.
    """
    try:
        major_minor = tuple(int(v) for v in version.split(".")[:2])
    except ValueError:
        raise InputError(f"cannot read the {package} version {version!r}") from None
    (low_major, low_minor), (high_major, high_minor) = checked
    pin = f">={low_major}.{low_minor},<{high_major}.{high_minor}"
    if not checked[0] <= major_minor < checked[1]:
        raise InputError(f"{package} {version} is outside the range geoest was checked on ({pin}; {reads}): "
                         f"pip install '{package}{pin}'")
