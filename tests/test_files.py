"""geoest.files: outputs written whole or not at all."""
import pytest

from geoest.files import atomic_path, write_text


def test_writes_are_whole_or_not_at_all(tmp_path):
    target = tmp_path / "table6.txt"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table6.txt"]
