"""geoest.scene.conversion: a conversion writes its model whole or not at all and keeps a user's file;
the release is fetched only on request, from 127.0.0.1 here, and files that are not the release's
are refused and removed."""
import os
import pathlib
import subprocess
import sys

import pytest

from caffe_helpers import closed_port, net_class, serving, small  # noqa: F401 (fixtures)
from geoest.errors import InputError
from geoest.scene import conversion

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_an_interrupted_conversion_leaves_no_file(small, tmp_path, monkeypatch):
    import keras

    prototxt, caffemodel, _ = small

    def interrupted_save(model, path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        conversion.convert(prototxt, caffemodel, tmp_path / "out.keras", places365=False)
    assert sorted(p.name for p in tmp_path.iterdir() if "out" in p.name) == []


def test_an_output_no_conversion_wrote_is_kept(small, tmp_path):
    prototxt, caffemodel, _ = small
    output = tmp_path / "mine.keras"
    output.write_bytes(b"someone's model")
    with pytest.raises(InputError, match="mine.keras exists and was not written by a conversion"):
        conversion.convert(prototxt, caffemodel, output, places365=False)
    assert output.read_bytes() == b"someone's model"
    first = conversion.convert(prototxt, caffemodel, output, places365=False, overwrite=True)
    again = conversion.convert(prototxt, caffemodel, output, places365=False)        # its own: replaced
    assert again["weights_sha256"] == first["weights_sha256"]


def test_downloaded_files_that_are_not_the_release_are_refused_and_removed(tmp_path):
    page = b"<!DOCTYPE html><html><body>Moved</body></html>"
    with serving({"p": page, "c": page}) as url:
        with pytest.raises(InputError, match=r"could not fetch .*cache.*sha256 .* is not the published"):
            conversion.fetch_release(tmp_path / "cache", prototxt_url=f"{url}/p", caffemodel_url=f"{url}/c")
    assert not list((tmp_path / "cache").iterdir())


def test_download_offline_is_one_clear_line(tmp_path):
    port = closed_port()
    env = dict(os.environ, GEOEST_CACHE=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "geoest.convert_places365", "--download",
         f"--prototxt_url=http://127.0.0.1:{port}/deploy.prototxt",
         f"--caffemodel_url=http://127.0.0.1:{port}/weights.caffemodel"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not fetch"), result.stderr[-2000:]
    for name in (conversion.PROTOTXT_FILE, conversion.CAFFEMODEL_FILE, str(tmp_path / "cache" / "places365")):
        assert name in lines[0]
    assert not list((tmp_path / "cache" / "places365").iterdir())
