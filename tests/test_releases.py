"""geoest/releases.py: a release outside the checked range, or one whose version cannot be read, is
refused in one line naming the range to install; the range's ends are [lowest, first unchecked)."""
import pytest

from geoest.errors import InputError
from geoest.releases import check_release

CHECKED = ((3, 15), (3, 16))


@pytest.mark.parametrize("version", ["3.15.0", "3.15.99", "3.15"])
def test_a_checked_release_passes(version):
    check_release("keras", version, CHECKED, "private API")


@pytest.mark.parametrize("version", ["3.14.9", "3.16.0", "4.0.0"])
def test_a_release_outside_the_range_names_the_pin(version):
    with pytest.raises(InputError, match=rf"^keras {version} is outside .*\(>=3\.15,<3\.16; private API\): "
                                         r"pip install 'keras>=3\.15,<3\.16'$"):
        check_release("keras", version, CHECKED, "private API")


def test_an_unreadable_version_is_one_line():
    with pytest.raises(InputError, match="cannot read the keras version 'dev'"):
        check_release("keras", "dev", CHECKED, "private API")
