"""The tf.distribute strategy of a run, chosen by name in one place."""
import os
import tempfile

import tensorflow as tf

from geoest.errors import InputError


def _one_device():
    return tf.distribute.OneDeviceStrategy("/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0")


def _tpu(tpu):
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


STRATEGIES = {
    "default": lambda tpu: tf.distribute.get_strategy(),
    "one_device": lambda tpu: _one_device(),
    "mirrored": lambda tpu: tf.distribute.MirroredStrategy(),
    # Workers and this task's role come from the TF_CONFIG environment variable.
    "multi_worker": lambda tpu: tf.distribute.MultiWorkerMirroredStrategy(),
    "tpu": _tpu,
}


def make_strategy(name: str = "default", tpu: str | None = None) -> tf.distribute.Strategy:
    """A strategy by name: default, one_device, mirrored, multi_worker (TF_CONFIG) or tpu (address `tpu`).

    Create it first thing in a program: multi_worker must exist before other TensorFlow ops run.
    """
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](tpu)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this task writes the run's files (the only task, the chief, or worker 0 without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None) or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def scratch_dir(strategy: tf.distribute.Strategy) -> str:
    """Where a non-chief worker writes what the chief writes to model_dir (removed after training).

    Every worker must save (saving reads synchronised variables collectively); only the chief's
    files are kept.
    """
    resolver = strategy.cluster_resolver
    return os.path.join(tempfile.gettempdir(), f"geoest_{resolver.task_type}_{resolver.task_id}_{os.getpid()}")

