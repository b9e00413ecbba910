"""geoest.files: outputs written whole or not at all, and the lock that keeps two runs apart."""
import json
import os
import socket
import subprocess
import sys

import pytest

from geoest.errors import InputError
from geoest.files import atomic_path, hold_lock, write_text


def test_stale_lock_is_detected_by_process_and_host(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    lock = tmp_path / "train.lock"
    lock.write_text(json.dumps({"pid": ended.pid, "host": socket.gethostname(), "since": "earlier"}))
    with hold_lock(lock):                       # its process is gone: taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(InputError, match=f"process {os.getpid()}"):
            with hold_lock(lock):               # held by a running process
                pass
    assert not lock.exists()
    lock.write_text(json.dumps({"pid": ended.pid, "host": "another-host.example", "since": "earlier"}))
    with pytest.raises(InputError, match="another-host.example.*delete"):   # cannot be checked from here
        with hold_lock(lock):
            pass


def test_writes_are_whole_or_not_at_all(tmp_path):
    target = tmp_path / "table6.txt"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table6.txt"]
