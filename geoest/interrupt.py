"""Stopping a long run at SIGTERM or SIGINT (Ctrl-C) so that re-running the same command resumes.

Cluster schedulers (Slurm, Kubernetes, TPU VMs) send SIGTERM and wait a grace period before
SIGKILL. `geoest.cli.run` installs `install()`'s handlers for every main:

* Outside a `deferred()` block a signal stops the run at once (`Interrupted` is raised where the
  program is): nothing is half-written, since every output is written under a temporary name.
* Inside `deferred()` (a training loop, a build, a labelling run) the signal is only noted; the
  loop finishes its current step, record or batch, saves what it has (a checkpoint, the rows or
  shards done) and calls `stop_if_requested(what was saved)`, which raises `Interrupted` with
  that line. A second signal stops at once.

The main then prints `interrupted: <line>` and exits with `EXIT_INTERRUPTED` (75, BSD's
EX_TEMPFAIL: "try again"): interrupted, resumable by the same command.
"""
import contextlib
import signal
import threading

EXIT_INTERRUPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested = []           # names of the signals received, in order
_depth = [0]              # nesting of deferred() blocks


class Interrupted(Exception):
    """A run stopped at a signal; the message says what was saved and that re-running resumes."""


def _handler(signum, frame):
    del frame
    name = signal.Signals(signum).name
    _requested.append(name)
    if not _depth[0] or len(_requested) > 1:
        raise Interrupted(f"stopped by {name}; re-run the same command to resume")


def install() -> None:
    """Installs the handlers of SIGTERM and SIGINT (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        signal.signal(signum, _handler)


def requested() -> str | None:
    """The name of the first signal received since the handlers were installed, or None."""
    return _requested[0] if _requested else None


def clear() -> None:
    """Forgets received signals (tests running several commands in one process)."""
    _requested.clear()


@contextlib.contextmanager
def deferred():
    """A block in which a signal is noted rather than raised; the block's loop checks
    `stop_if_requested` at each point where it can stop whole."""
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1


def stop_if_requested(saved: str) -> None:
    """Raises `Interrupted` naming the signal and `saved` (what the run kept, e.g. "checkpoint at
    step 120 saved") when a signal was received."""
    if _requested:
        raise Interrupted(f"stopped by {_requested[0]}: {saved}; re-run the same command to resume")
