import numpy as np
import pytest
import tensorflow as tf

from ops import Rescale


def test_uint8_to_unit_float_with_channel_axis():
    x = tf.constant([[[0, 128, 255]]], dtype=tf.uint8)  # [B=1, H=1, W=3]
    (out, ) = Rescale(inputs="x", outputs="x").forward([x], state={"mode": "train"})
    assert out.dtype == tf.float32
    assert out.shape == (1, 1, 3, 1)
    np.testing.assert_allclose(out.numpy().ravel(), [0.0, 128 / 255, 1.0], rtol=1e-7)


def test_keeps_existing_channel_axis():
    x = tf.fill([2, 28, 28, 1], tf.constant(51, tf.uint8))
    (out, ) = Rescale().forward([x], state={})
    assert out.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(out.numpy(), 0.2, rtol=1e-6)


def test_several_keys_at_once():
    a, b = tf.zeros([1, 2, 2], tf.uint8), tf.fill([1, 2, 2], tf.constant(255, tf.uint8))
    out = Rescale(inputs=("a", "b"), outputs=("a", "b")).forward([a, b], state={})
    assert [float(t.numpy().max()) for t in out] == [0.0, 1.0]


def test_float_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Rescale: input 'x' must hold integer images .* got float32"):
        Rescale().forward([tf.zeros([1, 28, 28])], state={})


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28, 2), (1, 2, 28, 28, 1)])
def test_wrong_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"Rescale: input 'x' must be a batch of images"):
        Rescale().forward([tf.zeros(shape, tf.uint8)], state={})


def test_refuses_torch():
    with pytest.raises(ValueError, match="TensorFlow-only"):
        Rescale().build("torch")
