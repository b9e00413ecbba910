r"""Model-step throughput of geoest's network on synthetic device-resident batches, any Keras backend.

    python tools/benchmarks/model_step.py [--backbone=resnet101v2 --image_size=224 --batch_size=256 \
        --policy=mixed_bfloat16 --steps=20 --runs=3 --jit_compile=auto --json=out.json]
    KERAS_BACKEND=jax python3 tools/benchmarks/model_step.py ...   # a GPU machine without TensorFlow

Times, with the batches already on the device (no input pipeline, no host-to-device copy):
  * training: `train_on_batch` of `geoest.models.build_model` (heads for the three MP-16
    partitionings of Table 1 unless --heads says otherwise), §3.3 losses, §4 SGD with momentum
    and weight decay; images per second;
  * three-crop inference (§3.4): the inference model (`geoest.models.build_inference_model`: the network on
    3 x batch crops, softmax, crop mean, f* and top-5 inside the model, so only [batch, 5]
    classes and probabilities leave the device), photos per second; and, for comparison, the
    network alone with every crop's logits leaving the device.
Each figure is the median of --runs runs of --steps steps, after warm-up steps (compilation).
It prints the Keras backend, the device's name and the host's core count.

Imports only `geoest.models` and Keras (and the backend's own package to name the device), so it
runs where TensorFlow is not installed (`../shared/gpu/README.md` has the recipe).
"""
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from geoest import cli  # noqa: E402  (after the path: the device machine runs from a checkout)

FLAGS = flags.FLAGS
flags.DEFINE_string("backbone", "resnet101v2", "Backbone (geoest.models.BACKBONES).")
flags.DEFINE_integer("image_size", 224, "Input side S in pixels.")
flags.DEFINE_integer("batch_size", 256, "Images per training step; photos (3 crops each) per inference call.")
flags.DEFINE_string("policy", "mixed_bfloat16", "Keras dtype policy: float32, mixed_float16, mixed_bfloat16.")
flags.DEFINE_list("heads", ["3298", "7202", "12893"], "Classes per head, coarse to fine (Table 1: MP-16).")
flags.DEFINE_string("head_dtype", None, "build_model.head_dtype: None (compute dtype) or float32.")
flags.DEFINE_integer("steps", 20, "Timed steps per run.")
flags.DEFINE_integer("runs", 3, "Timed runs (the median is reported).")
flags.DEFINE_integer("warmup", 3, "Untimed steps first (compilation).")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "XLA for the training step.")
flags.DEFINE_string("json", None, "Also write the figures to this JSON file.")


def device_name() -> str:
    """The accelerator Keras runs on, or the host CPU, named by the backend's own package."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {getattr(device, 'device_kind', device)}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"gpu: {torch.cuda.get_device_name(0)}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}"
    return f"cpu: {_cpu_model()}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synthetic_parents(sizes):
    """A valid hierarchy for timing: fine cell c lies in class c * n_k // n_fine of partitioning k."""
    fine = np.arange(sizes[-1])
    return np.stack([fine * n // sizes[-1] for n in sizes], axis=1)


def _median_rate(step, items_per_step: int, steps: int, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(items_per_step * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(backbone: str, image_size: int, batch_size: int, policy: str, heads, *, steps: int, runs: int,
            warmup: int, jit_compile="auto", head_dtype=None) -> dict:
    """Training images/s and three-crop inference photos/s (see the module docstring)."""
    import keras
    from geoest.models import add_weight_decay, build_inference_model, build_model, make_losses

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        sizes = {f"cells_{k}": int(n) for k, n in enumerate(heads)}
        model = build_model(sizes, backbone=backbone, image_size=image_size, head_dtype=head_dtype)
        add_weight_decay(model)
        losses, weights = make_losses(model.output_names)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=losses, loss_weights=weights,
                      jit_compile=jit_compile)
        rng = np.random.default_rng(0)
        # Device-resident uint8 batches, as the input pipeline hands them over.
        images = keras.ops.convert_to_tensor(rng.integers(0, 256, (batch_size, image_size, image_size, 3), "uint8"))
        labels = {name: keras.ops.convert_to_tensor(rng.integers(0, n, batch_size).astype("int32"))
                  for name, n in sizes.items()}
        train = _median_rate(lambda: model.train_on_batch(images, labels), batch_size, steps, runs, warmup)

        crops = keras.ops.convert_to_tensor(
            rng.integers(0, 256, (batch_size, 3, image_size, image_size, 3), "uint8"))
        inference = build_inference_model(model, list(sizes), synthetic_parents(list(sizes.values())), top_k=5)
        located = _median_rate(lambda: inference.predict_on_batch(crops), batch_size, steps, runs, warmup)
        flat = keras.ops.reshape(crops, (3 * batch_size, image_size, image_size, 3))
        logits_out = _median_rate(lambda: model.predict_on_batch(flat), batch_size, steps, runs, warmup)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return {"backend": keras.backend.backend(), "keras": keras.__version__, "device": device_name(),
            "cpu_count": os.cpu_count(), "backbone": backbone, "image_size": image_size,
            "batch_size": batch_size, "policy": policy, "heads": [int(n) for n in heads],
            "head_dtype": head_dtype, "jit_compile": jit_compile, "steps": steps, "runs": runs,
            "train_images_per_s": round(train, 2), "inference_photos_per_s": round(located, 2),
            "inference_logits_out_photos_per_s": round(logits_out, 2)}


def main(argv):
    del argv
    jit = {"auto": "auto", "true": True, "false": False}[FLAGS.jit_compile]
    result = measure(FLAGS.backbone, FLAGS.image_size, FLAGS.batch_size, FLAGS.policy, FLAGS.heads,
                     steps=FLAGS.steps, runs=FLAGS.runs, warmup=FLAGS.warmup, jit_compile=jit,
                     head_dtype=FLAGS.head_dtype)
    print(f"Keras {result['keras']} ({result['backend']} backend) on {result['device']}; "
          f"os.cpu_count() = {result['cpu_count']}")
    print(f"{FLAGS.backbone} @{FLAGS.image_size}px, heads {'/'.join(FLAGS.heads)}, {FLAGS.policy}, "
          f"batch {FLAGS.batch_size}, median of {FLAGS.runs} runs of {FLAGS.steps} steps:")
    print(f"  training                                   {result['train_images_per_s']:10.2f} images/s")
    print(f"  three-crop inference, §3.4 on the device   {result['inference_photos_per_s']:10.2f} photos/s")
    print(f"  three-crop inference, every logit out      {result['inference_logits_out_photos_per_s']:10.2f} photos/s")
    if FLAGS.json:
        with open(FLAGS.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    cli.run(main)
