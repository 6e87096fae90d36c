import numpy as np
import pytest
import tensorflow as tf

from ops import Binarize, Rescale


def test_strictly_above_threshold_is_one():
    x = tf.constant([[[0.2, 0.5, 0.50001, 0.9]]])
    (out, ) = Binarize().forward([x], state={})
    np.testing.assert_array_equal(out.numpy(), [[[0.0, 0.0, 1.0, 1.0]]])
    assert out.dtype == tf.float32


def test_after_rescale_equals_uint8_at_least_128(mnist):
    images = mnist.x_test[:64]
    (scaled, ) = Rescale().forward([tf.constant(images)], state={})
    (binary, ) = Binarize().forward([scaled], state={})
    np.testing.assert_array_equal(binary.numpy()[..., 0], (images >= 128).astype(np.float32))


def test_custom_threshold():
    (out, ) = Binarize(threshold=0.25).forward([tf.constant([[[0.2, 0.3]]])], state={})
    np.testing.assert_array_equal(out.numpy(), [[[0.0, 1.0]]])


@pytest.mark.parametrize("threshold", [0, 1, -0.1, 1.5, "0.5", None, True])
def test_threshold_must_be_in_open_unit_interval(threshold):
    with pytest.raises(ValueError, match="threshold must be a number strictly between 0 and 1"):
        Binarize(threshold=threshold)


def test_nan_images_are_refused():
    x = tf.constant([[[0.1, float("nan")]]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="Binarize: input 'x' contains NaN or Inf"):
        Binarize().forward([x], state={})


def test_integer_images_are_refused():
    with pytest.raises(ValueError, match="must hold float images in 0..1, got uint8 .put Rescale before it"):
        Binarize().forward([tf.zeros([1, 28, 28], tf.uint8)], state={})
