r"""Training throughput (images/s) of the §4 network: ResNet-101 with the three base(M) heads.

  python tools/benchmarks/training.py --batch_size=16 --steps=3 --runs=3
  python tools/benchmarks/training.py --mixed_precision=mixed_float16 --jit_compile --batch_size=128  # GPU

Times `fit` steps on one synthetic batch repeated (no input pipeline cost), after one warm-up
epoch; prints the median over `runs` epochs of `steps` steps, and os.cpu_count().
"""
import os
import sys
import time

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from geoest import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("backbone", "resnet101v2", "Backbone (geoest.models.BACKBONES).")
flags.DEFINE_integer("image_size", 224, "Input side in pixels.")
flags.DEFINE_integer("batch_size", 16, "Global batch.")
flags.DEFINE_integer("steps", 3, "Steps per timed epoch.")
flags.DEFINE_integer("runs", 3, "Timed epochs (the median is reported).")
flags.DEFINE_string("mixed_precision", None, "mixed_float16 or mixed_bfloat16.")
flags.DEFINE_bool("jit_compile", False, "XLA.")
flags.DEFINE_integer("steps_per_execution", 1, "Steps per compiled call.")

HEADS = {"cells_50_5000": 3298, "cells_50_2000": 7202, "cells_50_1000": 12893}  # Table 1


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from geoest.models import add_weight_decay, build_model, make_losses
    from geoest.training import make_optimizer

    if FLAGS.mixed_precision:
        keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
    model = build_model(HEADS, backbone=FLAGS.backbone, image_size=FLAGS.image_size)
    add_weight_decay(model)
    losses, weights = make_losses(model.output_names)
    model.compile(make_optimizer(steps_per_epoch=1000), loss=losses, loss_weights=weights,
                  jit_compile=FLAGS.jit_compile, steps_per_execution=FLAGS.steps_per_execution)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3), dtype="uint8")
    labels = {name: rng.integers(0, n, FLAGS.batch_size) for name, n in HEADS.items()}
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    model.fit(data, epochs=FLAGS.runs + 1, steps_per_epoch=FLAGS.steps, callbacks=[timer], shuffle=False, verbose=0)
    per_run = [FLAGS.steps * FLAGS.batch_size / s for s in timer.seconds[1:]]  # first epoch: warm-up
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"training throughput {FLAGS.backbone} @{FLAGS.image_size}px, batch {FLAGS.batch_size}, {device}, "
          f"mixed_precision={FLAGS.mixed_precision}, jit_compile={FLAGS.jit_compile}: "
          f"median {np.median(per_run):.2f} images/s over {FLAGS.runs} runs of {FLAGS.steps} steps "
          f"(runs: {', '.join(f'{x:.2f}' for x in per_run)}); os.cpu_count()={os.cpu_count()}")


if __name__ == "__main__":
    cli.run(main)
