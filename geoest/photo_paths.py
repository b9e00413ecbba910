"""Photo paths read from a CSV (IMG_ID under --images_dir) stay inside their folder (`path_inside`),
links out of it included (`link_leaves`), unless the user allows them; nothing is opened to judge."""
import functools
import os
import pathlib

OUTSIDE_ABSOLUTE = "absolute path (allow with --allow_absolute_paths)"
OUTSIDE_PARENT = "path leaves --images_dir"
OUTSIDE_LINK = "link to a file outside --images_dir (follow with --follow_links)"


def path_inside(folder, relative: str, allow_absolute: bool = False):
    """`folder / relative` when that stays inside `folder`, judged on the path's text alone.

    Returns:
      (path, None), or (None, reason) for an absolute path (unless `allow_absolute`, then the
      path itself) or one whose ".." parts climb out of `folder`. Nothing is opened.
    """
    if os.path.isabs(relative) or (os.name == "nt" and os.path.splitdrive(relative)[0]):
        if allow_absolute:
            return pathlib.Path(relative), None
        return None, OUTSIDE_ABSOLUTE
    normal = os.path.normpath(relative)
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        return None, OUTSIDE_PARENT
    return pathlib.Path(folder) / normal, None


def link_leaves(folder, path) -> bool:
    """Whether `path`, inside `folder` by its text (`path_inside`), leads out of it through a
    symbolic link (of the file or of a folder on the way): its real path, every link resolved, is
    not under the folder's real path (the folder may itself be a link). A missing file is judged
    by the links that exist; nothing is opened.
    """
    root = _real_folder(str(folder))
    real = os.path.realpath(path)
    return real != root and not real.startswith(root.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=8)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)
