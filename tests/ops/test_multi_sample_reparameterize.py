import math

import numpy as np
import pytest
import tensorflow as tf

from ops import MultiSampleReparameterizeOp, ReparameterizeOp


def test_sample_major_rows_with_each_examples_moments():
    k = 50_000
    mean = tf.constant([[1.0, -2.0], [5.0, 0.0]])
    logvar = tf.constant([[math.log(4.0), 0.0], [math.log(0.25), math.log(9.0)]])
    tf.random.set_seed(0)
    z = MultiSampleReparameterizeOp(samples=k).forward([mean, logvar], state={}).numpy()
    assert z.shape == (2 * k, 2)
    per_example = z.reshape(k, 2, 2)  # row j*B + b is sample j of example b
    var = np.exp(logvar.numpy())
    np.testing.assert_array_less(np.abs(per_example.mean(0) - mean.numpy()), 5 * np.sqrt(var / k))
    np.testing.assert_array_less(np.abs(per_example.var(0) - var), 5 * var * np.sqrt(2 / k))


def test_one_sample_has_the_reparameterize_op_contract():
    op = MultiSampleReparameterizeOp(samples=1)
    assert op.inputs == ReparameterizeOp().inputs and op.outputs == ReparameterizeOp().outputs
    assert op.forward([tf.zeros([7, 3]), tf.zeros([7, 3])], state={}).shape == (7, 3)


def test_dynamic_batch_in_one_traced_graph():
    op = MultiSampleReparameterizeOp(samples=3)
    fn = tf.function(lambda m, v: op.forward([m, v], state={}), reduce_retracing=True)
    assert [fn(tf.zeros([n, 2]), tf.zeros([n, 2])).shape[0] for n in (10, 4, 1)] == [30, 12, 3]


@pytest.mark.parametrize("samples", [0, -1, 2.5, None, False])
def test_samples_must_be_a_positive_integer(samples):
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        MultiSampleReparameterizeOp(samples=samples)
