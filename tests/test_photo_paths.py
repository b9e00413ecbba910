"""geoest.photo_paths: a CSV's photo paths stay inside their folder, by their text and through links."""
import os

from geoest.photo_paths import OUTSIDE_ABSOLUTE, OUTSIDE_PARENT, link_leaves, path_inside


def test_paths_inside_by_their_text(tmp_path):
    assert path_inside(tmp_path, "a/b.jpg") == (tmp_path / "a" / "b.jpg", None)
    assert path_inside(tmp_path, "a/../b.jpg") == (tmp_path / "b.jpg", None)
    assert path_inside(tmp_path, "../b.jpg") == (None, OUTSIDE_PARENT)
    assert path_inside(tmp_path, "a/../../b.jpg") == (None, OUTSIDE_PARENT)
    assert path_inside(tmp_path, "..") == (None, OUTSIDE_PARENT)
    assert path_inside(tmp_path, "/etc/passwd") == (None, OUTSIDE_ABSOLUTE)
    assert path_inside(tmp_path, "/etc/passwd", allow_absolute=True)[0] == __import__("pathlib").Path("/etc/passwd")
    assert path_inside(tmp_path, "..b.jpg") == (tmp_path / "..b.jpg", None)      # a name, not a parent


def test_links_out_of_the_folder_are_told(tmp_path):
    images, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    images.mkdir(), elsewhere.mkdir()
    (elsewhere / "x.jpg").write_bytes(b"x")
    (images / "inside.jpg").write_bytes(b"y")
    os.symlink(elsewhere / "x.jpg", images / "out.jpg")                # a file link leaving the folder
    os.symlink(elsewhere, images / "sub")                               # a folder link on the way
    os.symlink(images / "inside.jpg", images / "alias.jpg")             # a link that stays inside
    assert not link_leaves(images, images / "inside.jpg")
    assert not link_leaves(images, images / "alias.jpg")
    assert link_leaves(images, images / "out.jpg")
    assert link_leaves(images, images / "sub" / "x.jpg")
    assert link_leaves(images, images / "sub" / "missing.jpg")          # judged by the links that exist
    linked = tmp_path / "linked_images"
    os.symlink(images, linked)                                          # the folder itself a link
    assert not link_leaves(linked, linked / "inside.jpg") and link_leaves(linked, linked / "out.jpg")
