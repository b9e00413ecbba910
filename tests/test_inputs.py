"""geoest.training.inputs: the synthetic partitioning and images (smoke runs) are deterministic and
labelled as the partitionings assign their coordinates; training data without an image is refused."""
import numpy as np
import pytest
import tensorflow as tf

from geoest.errors import InputError
from geoest.training.inputs import Inputs, require_images, synthetic_inputs, synthetic_partitioning


def test_the_synthetic_partitioning_is_the_same_for_the_same_arguments():
    a, b = synthetic_partitioning(tau_max=200), synthetic_partitioning(tau_max=200)
    assert a.tokens == b.tokens and len(a) > 8 and a.name == "synthetic"
    assert synthetic_partitioning(tau_max=200, seed=1).tokens != a.tokens
    assert len(synthetic_partitioning(tau_max=50)) > len(a)       # §3.1: a smaller tau_max, more cells


def test_synthetic_images_are_labelled_by_their_cells():
    coarse, fine = synthetic_partitioning("coarse", tau_max=400), synthetic_partitioning("fine", tau_max=100)
    inputs = synthetic_inputs([coarse, fine], batch_size=8, image_size=16, scene_level="S3", num_images=32,
                              num_validation=8)
    images, labels = next(iter(inputs.train))
    assert images.shape == (8, 16, 16, 3) and images.dtype == tf.uint8
    assert sorted(labels) == ["coarse", "fine", "scene"]
    np.testing.assert_array_equal(labels["scene"].numpy(), labels["fine"].numpy() % 3)
    crops, targets = next(iter(inputs.validation))
    assert crops.shape == (8, 3, 16, 16, 3)                                 # §3.4: three crops per photo
    for p in (coarse, fine):
        np.testing.assert_array_equal(p.assign(targets["lat"].numpy(), targets["lon"].numpy()), targets[p.name].numpy())
    assert inputs.count() == 32 and sum(int(b[0].shape[0]) for b in inputs.train_once) == 32


def test_training_data_without_an_image_is_refused_naming_it():
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 4, 4, 3), np.uint8)).batch(2)
    with pytest.raises(InputError, match="training data TFRecords 'none-\\*' holds zero images"):
        require_images(Inputs(empty, empty, None, lambda: 0, "TFRecords 'none-*'"))
