"""--strategy=multi_worker: two local worker processes (TF_CONFIG) train a few steps on CPU together."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from geoest.geo import Partitioning

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(30, 60, 600), rng.uniform(-10, 30, 600)
    for name, tau_max in (("coarse", 200), ("fine", 60)):
        Partitioning.build(lat, lon, tau_min=5, tau_max=tau_max, name=name).to_csv(tmp_path / f"{name}.csv")
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    model_dir = tmp_path / "run"
    args = [sys.executable, "-m", "geoest.train", "--strategy=multi_worker", "--gin_file=base_M.gin",
            "--gin_file=smoke.gin", f"--model_dir={model_dir}", "--gin_param=train.steps_per_epoch=3",
            f"--gin_param=train.partitionings=['{tmp_path / 'coarse.csv'}', '{tmp_path / 'fine.csv'}']"]
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
               "CUDA_VISIBLE_DEVICES": ""}
        workers.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True))
    try:
        outputs = [w.communicate(timeout=400)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-4000:]
    assert "MultiWorkerMirroredStrategy" in outputs[0] or "multi-worker" in outputs[0].lower()
    # The chief (worker 0) wrote checkpoints at every step and the best model; the step counter is shared.
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest is not None and latest.endswith("ckpt-3")
    best = json.loads((model_dir / "best.json").read_text())
    assert best["step"] == 3
    # Validation (three crops, f*) ran under the strategy on both workers' shares.
    assert np.isfinite(best["val_loss"]) and 0 <= best["val_hierarchy_acc_2500km"] <= 1
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir() if p.name.startswith("ckpt-3"))
