import math

import numpy as np
import pytest
import tensorflow as tf

from ops import ReparameterizeOp


def test_moments_match_mean_and_variance():
    n = 200_000
    mean = tf.tile(tf.constant([[1.0, -2.0]]), [n, 1])
    logvar = tf.tile(tf.constant([[math.log(4.0), math.log(0.25)]]), [n, 1])
    tf.random.set_seed(0)
    z = ReparameterizeOp().forward([mean, logvar], state={}).numpy()
    var = np.array([4.0, 0.25])
    # 5 standard errors: the sample mean has sd sqrt(var/n); the sample variance has sd var*sqrt(2/n).
    np.testing.assert_array_less(np.abs(z.mean(0) - [1.0, -2.0]), 5 * np.sqrt(var / n))
    np.testing.assert_array_less(np.abs(z.var(0) - var), 5 * var * np.sqrt(2 / n))


def test_gradients_reach_mean_and_logvar():
    mean, logvar = tf.Variable([[0.5, 0.5]]), tf.Variable([[0.0, 0.0]])
    with tf.GradientTape() as tape:
        z = ReparameterizeOp().forward([mean, logvar], state={})
        total = tf.reduce_sum(z)
    d_mean, d_logvar = tape.gradient(total, [mean, logvar])
    np.testing.assert_allclose(d_mean.numpy(), [[1.0, 1.0]])  # dz/dmean = 1
    eps = (z - mean).numpy()  # exp(0) = 1, so z - mean = eps and dz/dlogvar = eps / 2
    np.testing.assert_allclose(d_logvar.numpy(), eps / 2, rtol=1e-6)


def test_partial_batches_in_one_traced_graph():
    op = ReparameterizeOp()
    fn = tf.function(lambda m, v: op.forward([m, v], state={}), reduce_retracing=True)
    shapes = [fn(tf.zeros([n, 2]), tf.zeros([n, 2])).shape[0] for n in (100, 100, 50, 7)]
    assert shapes == [100, 100, 50, 7]


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="'mean' and 'logvar' must have the same shape"):
        ReparameterizeOp().forward([tf.zeros([2, 2]), tf.zeros([2, 3])], state={})
