"""URL lists (the authors' `mp16_urls.csv` and the like): the rows to download, one per IMG_ID, with
Flickr URLs asking for the 640-px size (`_z`) rather than the original."""
import collections
import csv
import dataclasses
import pathlib
import re

from geoest.data.download_reasons import DUPLICATE, NOT_HTTP
from geoest.errors import InputError
from geoest.files import ENCODING
from geoest.text_input import decode_error

FLICKR_SIZE = "z"               # 640 px on the longer side: enough for a 320 px shorter side
FLICKR_HOSTS = r"(?:[a-z0-9-]+\.)*staticflickr\.com"      # hosts of Flickr photo URLs (a regex)
_FLICKR_PATH = r"(?P<photo>/(?:[^/]+/)*\d+_[0-9a-f]+)(?P<size>_[a-z0-9])?(?P<ext>\.jpe?g)"


def flickr_sized(url: str, size: str = FLICKR_SIZE, hosts: str = FLICKR_HOSTS) -> str:
    """A Flickr photo URL asking for the size `size` ("z": 640 px); other URLs as given.

    On a host matching `hosts`, `.../{id}_{secret}.jpg` and `.../{id}_{secret}_{s}.jpg` become
    `.../{id}_{secret}_{size}.jpg`; an original (`_o`) has a secret of its own and is left as it is.
    """
    match = re.fullmatch(rf"(?P<host>https?://(?:{hosts})(?::\d+)?){_FLICKR_PATH}", url, re.I)
    if not match or (match["size"] or "").lower() == "_o":
        return url
    return f"{match['host']}{match['photo']}_{size}{match['ext']}"


@dataclasses.dataclass
class UrlList:
    """The rows of a URL list to download.

    Attributes:
      ids, urls: list[str] [n], one row per IMG_ID, in file order, URLs as requested.
      skipped: {reason: [IMG_ID, ...]} rows of the file left out (NOT_HTTP, DUPLICATE).
      rows: rows in the file.
    """
    ids: list
    urls: list
    skipped: dict
    rows: int


def read_url_list(path, id_column: str = "IMG_ID", url_column: str = "url", *,
                  flickr_size: str | None = FLICKR_SIZE, flickr_hosts: str = FLICKR_HOSTS) -> UrlList:
    """Reads a URL list: a CSV with an IMG_ID and a URL column (UTF-8).

    A file whose first row is IMG_ID,URL data rather than a header (the authors' `mp16_urls.csv`)
    is read as two columns, IMG_ID then URL. A URL that is not http(s) and the second and later
    rows of an IMG_ID are left out and counted; Flickr URLs (on `flickr_hosts`) ask for
    `flickr_size` (None: as given).

    Raises:
      InputError: a missing or empty file, no IMG_ID or URL column (the header is listed), an
        empty IMG_ID (its line named).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"URL list {path} does not exist")
    try:
        with open(path, newline="", encoding=ENCODING) as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise decode_error(path) from None
    header = [name.strip().lstrip("\ufeff") for name in rows[0]] if rows else []
    if not header:
        raise InputError(f"{path}: empty file; expected a header with {id_column},{url_column}")
    if len(header) >= 2 and re.match(r"^[a-z][a-z0-9+.-]*://", header[1], re.I):
        first_line, id_index, url_index = 1, 0, 1                      # no header: IMG_ID,URL rows
    else:
        missing = [c for c in (id_column, url_column) if c not in header]
        if missing:
            raise InputError(f"{path}: no column {', '.join(map(repr, missing))}; the header has "
                             f"{', '.join(header[:12])} (name the columns with --id_column, --url_column)")
        first_line, id_index, url_index = 2, header.index(id_column), header.index(url_column)
        rows = rows[1:]
    ids, urls, skipped, seen = [], [], collections.defaultdict(list), set()
    width = max(id_index, url_index) + 1
    for line, row in enumerate(rows, start=first_line):
        if not any(field.strip() for field in row):
            continue
        if len(row) < width:
            raise InputError(f"{path}: line {line} has {len(row)} fields; expected an IMG_ID and a URL")
        image_id, url = row[id_index].strip().lstrip("\ufeff"), row[url_index].strip()
        if not image_id:
            raise InputError(f"{path}: line {line}: empty IMG_ID")
        if image_id in seen:
            skipped[DUPLICATE].append(image_id)
            continue
        seen.add(image_id)
        if not re.match(r"^https?://", url, re.I):
            skipped[NOT_HTTP].append(image_id)
            continue
        ids.append(image_id)
        urls.append(flickr_sized(url, flickr_size, flickr_hosts) if flickr_size else url)
    return UrlList(ids, urls, dict(skipped), len(rows))
