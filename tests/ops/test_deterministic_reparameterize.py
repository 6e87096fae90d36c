import numpy as np
import tensorflow as tf

from ops import DeterministicReparameterizeOp, ReparameterizeOp


def test_z_is_the_mean_and_only_the_mean_gets_gradients():
    mean, logvar = tf.Variable([[0.5, -1.5], [2.0, 0.0]]), tf.Variable([[3.0, 3.0], [3.0, 3.0]])
    with tf.GradientTape() as tape:
        z = DeterministicReparameterizeOp().forward([mean, logvar], state={})
        total = tf.reduce_sum(z * z)
    np.testing.assert_array_equal(z.numpy(), mean.numpy())
    d_mean, d_logvar = tape.gradient(total, [mean, logvar])
    np.testing.assert_allclose(d_mean.numpy(), 2 * mean.numpy())
    assert d_logvar is None


def test_same_contract_as_reparameterize_op():
    op = DeterministicReparameterizeOp()
    assert op.inputs == ReparameterizeOp().inputs and op.outputs == ReparameterizeOp().outputs
