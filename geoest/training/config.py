"""Gin files: the project's gin/ folder on the search path, parse errors as InputError."""
import importlib.metadata
import logging
import os
import pathlib
import re

import gin

import geoest.data.pipeline  # noqa: F401  registers the configurables the gin files bind
from geoest.errors import InputError
from geoest.releases import check_release

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
# The repository's gin/ (and its root, so "gin/base_M.gin" works from anywhere), or gin/ packaged in geoest.
GIN_SEARCH_PATH = (_PACKAGE.parent / "gin", _PACKAGE.parent, _PACKAGE / "gin")
# The search path and the macro-typo check read gin's private `gin.config._LOCATION_PREFIXES` and
# `_CONFIG`; these are the gin-config releases they were checked on (setup.py pins the same range).
GIN_CHECKED = ((0, 5), (0, 6))   # [lowest, first unchecked)


def check_gin_version(version: str | None = None) -> None:
    """Refuses, in one line, a gin-config release whose private state the checks were not read on."""
    check_release("gin-config", version or importlib.metadata.version("gin-config"), GIN_CHECKED,
                  "the gin search path and the macro check read gin's private config state")


def add_search_paths() -> None:
    check_gin_version()
    for path in GIN_SEARCH_PATH:
        if path.is_dir() and str(path) not in gin.config._LOCATION_PREFIXES:  # noqa: SLF001 (no public getter)
            gin.add_config_file_search_path(str(path))


def parse_gin(gin_files=(), gin_params=()) -> None:
    """Parses gin files (path, or name under gin/: "isn_urban.gin", "gin/isn_urban.gin") and bindings.

    Raises:
      InputError: a missing file or an unknown / malformed binding, with gin's message, or a
        macro set by a binding that no gin file defines and nothing uses (a misspelt
        `IMAGENET_WEIGHT=...` would otherwise be ignored).
    """
    add_search_paths()
    quiet = _QuietFileLookups()
    logging.getLogger().addFilter(quiet)
    try:
        gin.parse_config_files_and_bindings(list(gin_files), [], finalize_config=False)
        from_files = _macros()
        gin.parse_config_files_and_bindings([], list(gin_params))
    except (ValueError, OSError, SyntaxError) as error:
        raise InputError(f"gin files {list(gin_files)} / bindings {list(gin_params)}: {error}") from error
    finally:
        logging.getLogger().removeFilter(quiet)
    unknown = [name for name in unused_macros(gin_params) if name not in from_files]
    if unknown:
        raise InputError(f"--gin_param sets the macro(s) {', '.join(unknown)} that no gin file defines or uses "
                         f"(a typo?); the macros of this configuration are {', '.join(sorted(from_files))}")


def _macros() -> set:
    return {name for name, kind in gin.config._CONFIG if kind == "gin.macro"}  # noqa: SLF001


def unused_macros(gin_params=()) -> list:
    """The macros that `gin_params` bind (`NAME = value`) and no parsed binding refers to (`%NAME`)."""
    bound = {m.group(1) for binding in gin_params for line in str(binding).splitlines()
             for m in [re.match(r"\s*([A-Za-z_]\w*)\s*=", line)] if m}
    used = set()

    def walk(value):
        if isinstance(value, gin.config.ConfigurableReference):
            parts = value.scoped_selector.split("/")
            if parts[-1] == "gin.macro" and len(parts) > 1:
                used.add(parts[-2])
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                walk(item)

    walk(list(gin.config._CONFIG.values()))  # noqa: SLF001 (gin has no public view of its bindings)
    return sorted(bound - used)


class _QuietFileLookups(logging.Filter):
    """Drops gin's "Path not found" errors for the search-path candidates it tries before the right one."""

    def filter(self, record):
        return not record.pathname.endswith(os.path.join("gin", "resource_reader.py"))


def variant_name(gin_files) -> list:
    """The gin file names of a run without folders and extension ("gin/isn_urban.gin" -> "isn_urban")."""
    return [os.path.splitext(os.path.basename(f))[0] for f in gin_files]
