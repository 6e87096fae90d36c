import numpy as np
import pytest
import tensorflow as tf

from ops import SplitOp


def test_first_half_is_mean_second_is_logvar():
    mean, logvar = SplitOp().forward(tf.constant([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]), state={})
    np.testing.assert_array_equal(mean.numpy(), [[1, 2], [5, 6]])
    np.testing.assert_array_equal(logvar.numpy(), [[3, 4], [7, 8]])


def test_dynamic_batch_in_a_graph():
    op = SplitOp()
    fn = tf.function(lambda t: op.forward(t, state={}), input_signature=[tf.TensorSpec([None, 6])])
    mean, logvar = fn(tf.zeros([3, 6]))
    assert mean.shape == (3, 3) and logvar.shape == (3, 3)


@pytest.mark.parametrize("shape", [(2, 3), (2, 2, 2)])
def test_odd_or_wrong_rank_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"SplitOp: input 'meanlogvar' must be \[B, 2 \* latent_dim\]"):
        SplitOp().forward(tf.zeros(shape), state={})


def test_needs_two_outputs():
    with pytest.raises(ValueError, match="needs 1 input and 2 outputs"):
        SplitOp(outputs="mean")
