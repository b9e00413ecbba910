"""A folder one run writes into is held with a lock file (`hold_lock`) naming the process and host;
a lock whose process has died is taken over, so a crash never leaves it stuck."""
import contextlib
import json
import logging
import os
import pathlib
import socket
import time

from geoest.errors import InputError
from geoest.files import ENCODING


def _process_start(pid: int):
    """The start time of a process (clock ticks since boot, Linux), to tell a reused pid; else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _running(holder: dict) -> bool:
    """Whether the process a lock names still runs (assumed so on another host: it cannot be checked)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                     # another user's process
    start = holder.get("process_start")
    return start is None or _process_start(pid) in (None, start)


@contextlib.contextmanager
def hold_lock(path, what: str = "this folder", flag: str = "--model_dir"):
    """Holds the lock file `path` for the block: {"pid", "host", "process_start", "since"}.

    A lock held by a running process is refused; one whose process is gone (same host, pid not
    running or reused) is stale and taken over with a warning. The lock is removed at the end.

    Raises:
      InputError: naming the process and host that hold the lock.
    """
    path = pathlib.Path(path)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
          "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text(encoding=ENCODING))
            except (OSError, ValueError):
                time.sleep(0.2)  # being written by its holder right now, or removed meanwhile
                try:
                    holder = json.loads(path.read_text(encoding=ENCODING))
                except FileNotFoundError:
                    continue
                except (OSError, ValueError):
                    holder = {}
            if holder and _running(holder):      # an unreadable lock is a run that died writing it
                elsewhere = holder.get("host") != me["host"]
                raise InputError(
                    f"{what} is in use by another run: process {holder.get('pid')} on {holder.get('host')} "
                    f"since {holder.get('since')} holds {path}; wait for it to end or use another {flag}"
                    + (f" (if that run is gone, delete {path})" if elsewhere else ""))
            logging.warning("taking over the stale lock %s of process %s on %s, which no longer runs",
                            path, holder.get("pid"), holder.get("host"))
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding=ENCODING) as f:
            json.dump(me, f)
        break
    else:
        raise InputError(f"cannot take the lock {path}; another run keeps taking it")
    try:
        yield path
    finally:
        try:
            if json.loads(path.read_text(encoding=ENCODING)).get("pid") == me["pid"]:
                path.unlink()
        except (OSError, ValueError):
            pass
