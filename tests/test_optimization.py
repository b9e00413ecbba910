"""geoest.training.optimization, §4: SGD with momentum 0.9 from lr 0.01, halved every five epochs."""
import pytest

from geoest.training import make_optimizer


def test_learning_rate_halves_every_five_epochs():
    optimizer = make_optimizer(steps_per_epoch=10)
    schedule = optimizer._learning_rate  # §4: 0.01, x 0.5 after every five epochs (staircase)
    at = {step: float(schedule(step)) for step in (0, 49, 50, 99, 100, 149)}
    assert at == pytest.approx({0: 0.01, 49: 0.01, 50: 0.005, 99: 0.005, 100: 0.0025, 149: 0.0025})
    assert optimizer.momentum == 0.9
