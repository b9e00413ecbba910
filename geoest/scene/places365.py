"""§3.2: the Places365 categories (S365) and their scene hierarchy (S16, S3).

The paper labels every photo with the Places365 ResNet-152 and derives two coarser label
sets from the official scene hierarchy: S16 (its 16 level-2 groups) and S3 (its level-1
groups indoor, outdoor natural and outdoor man-made, called indoor / natural / urban).
"We add the probabilities of all classes which are assigned to the same superordinate
category [...] we first divide the probability of these classes by the number of assigned
categories to maintain the normalization." That is one matrix product per level:
``probs3 = probs365 @ s3_matrix`` where row c of ``s3_matrix`` holds 1/k in each of the k
groups category c belongs to.

The two official files are read from a local directory, or fetched on explicit request
(`fetch_places365_files`) into a cache directory. Nothing here imports TensorFlow until a
``*_tf`` method is called.
"""
import csv
import dataclasses
import os
import pathlib
import shutil
import tempfile
import urllib.error
import urllib.request

import numpy as np

from geoest.errors import InputError

CONCEPTS = ("indoor", "natural", "urban")  # S3 label order: the hierarchy's level-1 columns
LEVELS = ("S3", "S16", "S365")
LEVEL_CLASSES = {"S3": 3, "S16": 16, "S365": 365}   # labels of each level are 0..n-1

CATEGORIES_FILE = "categories_places365.txt"
HIERARCHY_FILE = "scene_hierarchy_places365.csv"
# The category index of the CSAILVision/places365 repository, and the scene hierarchy sheet
# its README links to (exported as CSV: two header rows, CRLF line ends).
CATEGORIES_URL = ("https://raw.githubusercontent.com/CSAILVision/places365/master/"
                  + CATEGORIES_FILE)
HIERARCHY_URL = ("https://docs.google.com/spreadsheets/d/"
                 "1H7ADoEIGgbF_eXh9kcJjCs5j_r3VJwke4nebhkdzksg/export?format=csv")


def scene_label(probs) -> np.ndarray:
    """§3.2: the scene label of each image at one level (S3: its concept), the argmax of its probabilities.

    Args:
      probs: float [batch, n] probabilities of one level (S3: CONCEPTS order); a row holding a
        NaN, an infinity or a negative value is unknown.
    Returns:
      int64 [batch], the class index, or -1 where the row is unknown.
    """
    probs = np.asarray(probs, np.float64)
    known = np.isfinite(probs).all(axis=-1) & (probs >= 0).all(axis=-1)
    return np.where(known, np.argmax(np.where(known[..., None], probs, 0.0), axis=-1), -1).astype(np.int64)


def scene_label_tf(probs):
    """`scene_label` in TensorFlow (tf.data maps, tf.functions): tf.int64 [batch], -1 where unknown."""
    import tensorflow as tf

    probs = tf.convert_to_tensor(probs)
    known = tf.reduce_all(tf.math.is_finite(probs) & (probs >= 0), axis=-1)
    return tf.where(known, tf.argmax(tf.where(known[..., None], probs, tf.zeros_like(probs)), axis=-1),
                    tf.constant(-1, tf.int64))


_HEADER_ROWS = 2
_LEVEL1_MARK = "level 1"
_LEVEL2_MARK = "level 2"


def default_cache_dir() -> pathlib.Path:
    """Where fetched Places365 files (and, by convention, classifier weights) live.

    ``$GEOEST_CACHE/places365`` if that variable is set, else ``~/.cache/geoest/places365``.
    """
    root = os.environ.get("GEOEST_CACHE") or pathlib.Path.home() / ".cache" / "geoest"
    return pathlib.Path(root) / "places365"


def read_categories(path) -> list[str]:
    """Reads ``categories_places365.txt``: one ``/a/airfield 0`` line per category.

    Returns:
      The category names (``"/a/airfield"``) in index order.
    Raises:
      InputError: a line is not ``name index`` or the indices are not 0..n-1, each once.
    """
    path = pathlib.Path(path)
    by_index = {}
    with open(path, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise InputError(f"{path}, line {line_no}: expected 'category index' "
                                 f"(e.g. '/a/airfield 0'), got {line.rstrip()!r}")
            index = int(parts[1])
            if index in by_index:
                raise InputError(f"{path}, line {line_no}: index {index} appears twice")
            by_index[index] = parts[0]
    if sorted(by_index) != list(range(len(by_index))) or not by_index:
        raise InputError(f"{path}: category indices must be 0..n-1, each once "
                         f"(found {len(by_index)} lines)")
    return [by_index[i] for i in range(len(by_index))]


@dataclasses.dataclass(frozen=True)
class _HierarchySheet:
    names: list[str]            # category of each row, quotes stripped
    level1: np.ndarray          # uint8 [rows, 3]
    level2: np.ndarray          # uint8 [rows, n_level2]
    level2_names: list[str]


def _read_hierarchy_sheet(path) -> _HierarchySheet:
    """Parses the scene hierarchy CSV as exported from the official sheet.

    Row 0 marks where "Level 1" and "Level 2, ..." columns start; row 1 names every column;
    then one row per category: ``'/a/airfield',0,0,1,...`` with 0/1 memberships.
    """
    path = pathlib.Path(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    if len(rows) <= _HEADER_ROWS:
        raise InputError(f"{path}: expected two header rows and one row per category, "
                         f"found {len(rows)} rows")
    marks = [cell.strip().lower() for cell in rows[0]]
    level1_cols = [i for i, m in enumerate(marks) if m.startswith(_LEVEL1_MARK)]
    level2_cols = [i for i, m in enumerate(marks) if m.startswith(_LEVEL2_MARK)]
    if len(level1_cols) != 1 or not level2_cols:
        raise InputError(f"{path}: the first header row must mark the 'Level 1' and "
                         f"'Level 2' columns, got {rows[0]}")
    start1, start2 = level1_cols[0], level2_cols[0]
    n_cols = len(rows[1])
    if start2 - start1 != len(CONCEPTS) or n_cols <= start2:
        raise InputError(f"{path}: expected {len(CONCEPTS)} level-1 columns "
                         f"({', '.join(CONCEPTS)}) followed by the level-2 columns, "
                         f"got header {rows[1]}")
    names, memberships = [], []
    for row_no, row in enumerate(rows[_HEADER_ROWS:], start=_HEADER_ROWS + 1):
        if len(row) < n_cols:
            raise InputError(f"{path}, row {row_no}: expected {n_cols} columns, got {len(row)}")
        values = [cell.strip() or "0" for cell in row[start1:n_cols]]
        if any(v not in ("0", "1") for v in values):
            raise InputError(f"{path}, row {row_no} ({row[0]}): group memberships must be "
                             f"0 or 1, got {row[start1:n_cols]}")
        names.append(row[0].strip().strip("'\""))
        memberships.append([int(v) for v in values])
    memberships = np.asarray(memberships, dtype=np.uint8)
    split = start2 - start1
    return _HierarchySheet(names=names, level1=memberships[:, :split],
                           level2=memberships[:, split:],
                           level2_names=[c.strip() for c in rows[1][start2:n_cols]])


def _normalized(memberships: np.ndarray, level: str, categories, path) -> np.ndarray:
    """§3.2: a category in k groups gives each of them 1/k of its probability."""
    k = memberships.sum(axis=1, keepdims=True)
    orphans = [categories[i] for i in np.flatnonzero(k[:, 0] == 0)]
    if orphans:
        raise InputError(f"{path}: categories in no {level} group (each needs at least one, "
                         f"so that {level} probabilities sum to 1): {orphans[:5]}")
    return (memberships / k).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class SceneHierarchy:
    """The Places365 categories and the matrices that aggregate them to S16 and S3 (§3.2).

    Attributes:
      categories: the n category names in index order (``"/a/airfield"``, ...).
      s16_names: names of the level-2 groups in sheet order (the S16 label order).
      s3_matrix: float32 [n, 3]; row c has 1/k in each of the k S3 groups of category c.
      s16_matrix: float32 [n, 16]; the same for the level-2 groups.
    """
    categories: tuple
    s16_names: tuple
    s3_matrix: np.ndarray
    s16_matrix: np.ndarray

    @property
    def num_categories(self) -> int:
        return len(self.categories)

    def matrix(self, level: str) -> np.ndarray:
        """float32 [n, k] mapping S365 probabilities to ``level`` (identity for S365)."""
        if level == "S3":
            return self.s3_matrix
        if level == "S16":
            return self.s16_matrix
        if level == "S365":
            return np.eye(self.num_categories, dtype=np.float32)
        raise InputError(f"scene level {level!r}: expected one of {', '.join(LEVELS)}")

    def num_classes(self, level: str) -> int:
        return self.matrix(level).shape[1]

    def _check(self, probs365_shape) -> None:
        if not probs365_shape or probs365_shape[-1] != self.num_categories:
            raise InputError(f"scene probabilities of shape {tuple(probs365_shape)}: expected "
                             f"[..., {self.num_categories}] (one per Places365 category)")

    def aggregate(self, probs365, level: str) -> np.ndarray:
        """§3.2 aggregation in numpy.

        Args:
          probs365: float [..., n] category probabilities (each row summing to 1).
          level: "S3", "S16" or "S365".
        Returns:
          float32 [..., 3 | 16 | n] probabilities at that level, each row summing to 1.
        """
        probs365 = np.asarray(probs365, dtype=np.float32)
        self._check(probs365.shape)
        return probs365 @ self.matrix(level)

    def aggregate_tf(self, probs365, level: str):
        """`aggregate` in TensorFlow (works in tf.data maps and tf.functions)."""
        import tensorflow as tf

        probs365 = tf.convert_to_tensor(probs365)
        self._check(probs365.shape.as_list())
        matrix = tf.constant(self.matrix(level), dtype=probs365.dtype)
        return tf.tensordot(probs365, matrix, axes=1)

    def labels(self, probs365) -> dict:
        """§3.2: the label at each level is the argmax of that level's probabilities (`scene_label`).

        Args:
          probs365: float [batch, n].
        Returns:
          {"S3": int64 [batch], "S16": int64 [batch], "S365": int64 [batch]}.
        """
        probs365 = np.asarray(probs365, dtype=np.float32)
        self._check(probs365.shape)
        return {level: scene_label(self.aggregate(probs365, level)) for level in LEVELS}

    def labels_tf(self, probs365) -> dict:
        """`labels` in TensorFlow: {"S3" | "S16" | "S365": tf.int64 [batch]}."""
        return {level: scene_label_tf(self.aggregate_tf(probs365, level)) for level in LEVELS}


def load_scene_hierarchy(hierarchy_csv, categories_txt) -> SceneHierarchy:
    """Reads the official category list and scene hierarchy, matching rows by name.

    Args:
      hierarchy_csv: path of ``scene_hierarchy_places365.csv``.
      categories_txt: path of ``categories_places365.txt`` (defines the category order).
    Raises:
      InputError: either file is malformed, the two do not name the same categories, or a
        category belongs to no group of a level.
    """
    categories = read_categories(categories_txt)
    sheet = _read_hierarchy_sheet(hierarchy_csv)
    row_of = {}
    for row, name in enumerate(sheet.names):
        if name in row_of:
            raise InputError(f"{hierarchy_csv}: category {name!r} appears in two rows")
        row_of[name] = row
    missing = [c for c in categories if c not in row_of]
    extra = sorted(set(row_of) - set(categories))
    if missing or extra:
        raise InputError(f"{hierarchy_csv} does not match {categories_txt}: "
                         f"{len(missing)} categories have no hierarchy row {missing[:5]}, "
                         f"{len(extra)} hierarchy rows name no category {extra[:5]}")
    order = [row_of[c] for c in categories]
    return SceneHierarchy(
        categories=tuple(categories),
        s16_names=tuple(sheet.level2_names),
        s3_matrix=_normalized(sheet.level1[order], "S3", categories, hierarchy_csv),
        s16_matrix=_normalized(sheet.level2[order], "S16", categories, hierarchy_csv))


def download_file(url: str, target: pathlib.Path) -> None:
    """Downloads ``url`` to ``target`` through a temporary file (no partial files left)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as e:
        os.unlink(tmp)
        raise InputError(f"could not download {url} ({e}); without network, put "
                         f"{target.name} into {target.parent} yourself") from e


def fetch_places365_files(cache_dir=None, *, categories_url: str = CATEGORIES_URL,
                          hierarchy_url: str = HIERARCHY_URL, force: bool = False):
    """Downloads the official category list and scene hierarchy into ``cache_dir``.

    Only called on explicit request (``--download``); files already there are kept unless
    ``force``. The downloaded pair is loaded once to check it before returning.

    Returns:
      (hierarchy_csv, categories_txt) paths.
    Raises:
      InputError: a download failed (e.g. offline) or the files do not parse.
    """
    cache_dir = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    hierarchy_csv, categories_txt = cache_dir / HIERARCHY_FILE, cache_dir / CATEGORIES_FILE
    for url, target in ((categories_url, categories_txt), (hierarchy_url, hierarchy_csv)):
        if force or not target.exists():
            download_file(url, target)
    load_scene_hierarchy(hierarchy_csv, categories_txt)
    return hierarchy_csv, categories_txt


def resolve_places365_files(directory=None, *, download: bool = False):
    """Finds the two Places365 files in ``directory`` (default: `default_cache_dir`).

    With ``download``, missing files are first fetched there (`fetch_places365_files`).

    Returns:
      (hierarchy_csv, categories_txt) paths.
    Raises:
      InputError: the files are not there and ``download`` is False, or the download failed.
    """
    directory = pathlib.Path(directory) if directory else default_cache_dir()
    if download:
        return fetch_places365_files(directory)
    hierarchy_csv, categories_txt = directory / HIERARCHY_FILE, directory / CATEGORIES_FILE
    absent = [p.name for p in (hierarchy_csv, categories_txt) if not p.exists()]
    if absent:
        raise InputError(f"{directory} lacks {', '.join(absent)}: pass the directory that "
                         f"holds both files, or ask to download them (--download)")
    return hierarchy_csv, categories_txt


def load_default_hierarchy(directory=None, *, download: bool = False) -> SceneHierarchy:
    """`load_scene_hierarchy` on the files `resolve_places365_files` finds."""
    return load_scene_hierarchy(*resolve_places365_files(directory, download=download))
