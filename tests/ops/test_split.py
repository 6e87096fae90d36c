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


def test_logvar_is_clipped_so_nothing_downstream_overflows():
    import numpy as np

    from ops import AnalyticKLLoss, CVAELoss, ReparameterizeOp
    from ops.densities import LOGVAR_MAX, LOGVAR_MIN
    out = tf.constant([[0.0, 0.0, 500.0, -500.0]])  # what a diverging encoder can emit
    mean, logvar = SplitOp().forward(out, state={})
    np.testing.assert_array_equal(logvar.numpy(), [[LOGVAR_MAX, LOGVAR_MIN]])
    z = ReparameterizeOp().forward([mean, tf.constant([[500.0, -500.0]])], state={})  # even unsplit input
    assert np.all(np.isfinite(z.numpy()))
    data = [tf.ones([1, 2, 2, 1]), tf.zeros([1, 2, 2, 1]), mean, tf.constant([[500.0, -500.0]]), z]
    for loss in (CVAELoss(), AnalyticKLLoss()):
        assert np.isfinite(loss.forward(data, state={}).numpy())
