"""The §4 training run: input functions, optimiser, strategies, callbacks and the trainer."""
from geoest.training.distribute import STRATEGIES, make_strategy
from geoest.training.inputs import Inputs, synthetic_inputs, tfrecord_inputs
from geoest.training.optimization import make_optimizer
from geoest.training.trainer import BEST_MODEL, train

__all__ = ["BEST_MODEL", "Inputs", "STRATEGIES", "make_optimizer", "make_strategy", "synthetic_inputs",
           "tfrecord_inputs", "train"]
