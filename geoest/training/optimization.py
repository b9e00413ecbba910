"""§4 optimisation: SGD, lr 0.01, momentum 0.9, lr x 0.5 after every five epochs (staircase)."""
import gin
import keras


@gin.configurable
def make_optimizer(steps_per_epoch: int, learning_rate: float = 0.01, momentum: float = 0.9,
                   decay_factor: float = 0.5, decay_every_epochs: int = 5) -> keras.optimizers.Optimizer:
    """SGD with momentum and an exponential, staircase learning-rate decay.

    §4: "the learning rate is exponentially lowered by a factor of 0.5 after every five training
    epochs"; lr(step) = learning_rate * decay_factor ** floor(step / (decay_every_epochs * steps_per_epoch)).
    Weight decay is a loss term (`geoest.models.add_weight_decay`).
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=decay_every_epochs * steps_per_epoch, decay_rate=decay_factor, staircase=True)
    return keras.optimizers.SGD(schedule, momentum=momentum)
