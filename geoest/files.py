"""Files a command reads and writes, so that a run never leaves a user's files wrong or half-written.

* Outputs are written whole or not at all: `atomic_path` / `write_text` write a temporary file
  beside the target and rename it, so an interrupted run leaves the old file or the new one.
* Outputs never replace inputs (`check_output`), and an existing output is replaced only when the
  command owns it: `claim_outputs` keeps a small manifest of what a command wrote and from which
  inputs; a file it did not write for the same inputs is refused unless the user says --overwrite.

Paths read from a CSV stay inside their folder (`geoest.photo_paths`); text files are UTF-8, a
byte that is not is named by line (`geoest.text_input`); a folder one run writes into is held with
a lock file (`geoest.locks`).
* An OS error while writing (a full disk, a quota, a read-only folder) is reported in one line
  naming the file and what was being written (`writing` names them on the error; `geoest.cli.run`
  prints it); the temporary file is removed, so nothing half-written is trusted later.
"""
import contextlib
import filecmp
import hashlib
import json
import os
import pathlib
import shutil

from geoest.errors import InputError

ENCODING = "utf-8"      # meta CSVs, partitionings, results: the one encoding geoest reads and writes


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same suffix); renamed to `path` when the block ends
    without an exception, removed otherwise."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(path, what: str):
    """Names `path` and `what` ("TFRecord shard", "checkpoint", ...) on any error raised in the block
    (`geoest.cli.os_error_line` reports an OS error with them in one line)."""
    try:
        yield
    except Exception as err:
        if getattr(err, "geoest_path", None) is None:
            try:
                err.geoest_path, err.geoest_writing = str(path), what
            except AttributeError:      # an exception type without a __dict__
                pass
        raise


@contextlib.contextmanager
def atomic_folder(path, what: str = "folder"):
    """Yields a temporary folder beside `path` (".NAME.tmpPID"); renamed to `path` when the block
    ends without an exception (an empty `path` there is replaced), removed otherwise, so that
    `path` is absent or complete, never half-written (a server watching it sees one or the
    other). Temporary folders of runs that were killed are removed first."""
    path = pathlib.Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with writing(path, what):
        tmp.mkdir(parents=True)
    try:
        with writing(path, what):
            yield tmp
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=ENCODING)


def write_deterministic(path, write, *, overwrite: bool = False, flag: str = "--overwrite") -> None:
    """Writes a file whose bytes follow from the command's inputs alone: `write(tmp_path)`, then a rename.

    An existing `path` with other bytes was not written by this command from these inputs: it is
    replaced only with `overwrite`, else left as it was and refused.
    """
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        write(tmp)
        if path.exists() and not overwrite and not filecmp.cmp(tmp, path, shallow=False):
            raise InputError(f"{path} exists and differs from what this run writes; pass {flag} to "
                             "replace it, or write elsewhere")


def _same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path, *, inputs=(), flag: str = "--output") -> pathlib.Path:
    """Checks that an output file can be written: its folder exists and it is none of `inputs`.

    Raises:
      InputError: naming the flag and the path.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise InputError(f"{flag}={path} is a folder; expected a file name")
    if not path.parent.is_dir():
        raise InputError(f"{flag}={path}: the folder {path.parent} does not exist; create it first")
    for source in inputs:
        if source is not None and _same_file(path, pathlib.Path(source)):
            raise InputError(f"{flag}={path} is an input of this command ({source}); "
                             "choose another output file")
    return path


def file_identity(path) -> dict:
    """What a run depends on in a file without reading it: its absolute path, size and mtime."""
    path = pathlib.Path(path)
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def digest(chunks) -> str:
    """sha256 hex digest of an iterable of bytes."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


def manifest_path(output) -> pathlib.Path:
    """The JSON manifest beside an output file (`claim_outputs`): ``out.csv`` -> ``out.csv.json``."""
    output = pathlib.Path(output)
    return output.with_name(output.name + ".json")


def claim_outputs(manifest, inputs: dict, outputs, *, overwrite: bool = False,
                  command: str = "this command", flag: str = "--overwrite") -> bool:
    """Takes ownership of `outputs` for a run on `inputs`, or refuses.

    `manifest` (JSON) records the inputs of the run that wrote the outputs and which files it
    wrote. An existing output is replaced only when that manifest says this command wrote it for
    the same inputs, or with `overwrite`.

    Args:
      manifest: path of the manifest file.
      inputs: JSON-able identity of everything the outputs depend on (files, models, options).
      outputs: paths this run may write (existing or not).
      overwrite: replace outputs this command does not own.
    Returns:
      True when the outputs there were written for the same inputs (a run may resume from them);
      False when the run starts afresh.
    Raises:
      InputError naming the first output that belongs to someone else, and what changed.
    """
    manifest = pathlib.Path(manifest)
    inputs = json.loads(json.dumps(inputs))          # as it reads back (tuples become lists)
    previous = {}
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text(encoding=ENCODING))
        except (ValueError, UnicodeDecodeError):
            previous = {}
    same = previous.get("inputs") == inputs
    owned = set(previous.get("files", [])) if same else set()
    names = {pathlib.Path(o): os.path.relpath(o, manifest.parent) for o in outputs}
    for path, name in names.items():
        if path.exists() and name not in owned and not overwrite:
            if previous.get("inputs") is not None and not same:
                old = previous["inputs"]
                changed = sorted(k for k in set(old) | set(inputs) if old.get(k) != inputs.get(k))
                why = (f"was written by {command} from other inputs (changed: {', '.join(changed)}; "
                       f"see {manifest})")
            else:
                why = f"was not written by {command} for these inputs"
            raise InputError(f"{path} {why}; pass {flag} to replace it, or write elsewhere")
    write_text(manifest, json.dumps({"inputs": inputs, "files": sorted(owned | set(names.values()))},
                                    indent=1) + "\n")
    return same
