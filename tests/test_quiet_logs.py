"""Quiet by default: the first line a command prints on a CPU machine is geoest's own, never
TensorFlow's native start-up logging, and no Keras input-structure warning; --verbosity=1 or
GEOEST_TF_LOGS=1 brings the native lines back. docs/guarantees.md cites these tests."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

import inference_helpers as helpers
from data_helpers import jpeg_bytes
from geoest import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
# A TensorFlow / XLA native log line (glog / absl format) or the start-up notices it prints.
NATIVE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|cpu_feature_guard|oneDNN|cuInit|cuda drivers")


def _run(*args, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GEOEST_TF_LOGS")}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=dict(environ, PYTHONPATH=str(REPO), **env))


def test_help_prints_no_native_log_line():
    result = _run("-m", "geoest.predict", "--help")
    assert "--model_dir" in result.stdout      # (absl ends --help with status 1)
    assert not [line for line in result.stderr.splitlines() if NATIVE.search(line)], result.stderr


@pytest.mark.slow
def test_a_tiny_predict_prints_no_native_log_line_nor_keras_warning(tmp_path):
    parts = helpers.partitionings(600)
    helpers.save_model_dir(helpers.tiny_model({p.name: len(p) for p in parts}, 32), parts, tmp_path / "model")
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(40, 48))
    args = ["-m", "geoest.predict", f"--model_dir={tmp_path / 'model'}", f"--images={tmp_path / 'photo.jpg'}",
            f"--output={tmp_path / 'out.csv'}"]
    result = _run(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [line for line in result.stderr.splitlines() if NATIVE.search(line)], result.stderr[-3000:]
    assert "structure of `inputs`" not in result.stderr
    verbose = _run(*args[:-1], f"--output={tmp_path / 'again.csv'}", GEOEST_TF_LOGS="1")
    assert verbose.returncode == 0 and any(NATIVE.search(line) for line in verbose.stderr.splitlines())


def test_native_logs_are_asked_for_by_verbosity_or_the_environment():
    assert not cli.wants_native_logs(["x", "--model_dir=a"], {})
    assert cli.wants_native_logs(["x", "--verbosity=1"], {}) and cli.wants_native_logs(["x", "-v", "2"], {})
    assert not cli.wants_native_logs(["x", "--verbosity=0"], {})
    assert cli.wants_native_logs(["x"], {"GEOEST_TF_LOGS": "1"}) and cli.wants_native_logs(["x"], {"TF_CPP_MIN_LOG_LEVEL": "0"})
