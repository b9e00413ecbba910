"""geoest.locks: the lock that keeps two runs apart, taken over when its process is gone."""
import json
import os
import socket
import subprocess
import sys

import pytest

from geoest.errors import InputError
from geoest.locks import hold_lock


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
