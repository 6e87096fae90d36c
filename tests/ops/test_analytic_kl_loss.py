import numpy as np
import tensorflow as tf

from ops import AnalyticKLLoss, CVAELoss, ReparameterizeOp


def test_equals_the_mc_loss_in_expectation():
    """Same expectation as CVAELoss over many z draws."""
    rng = np.random.default_rng(0)
    n = 20000
    x = tf.constant((rng.random((1, 4, 4, 1)) > 0.5).astype(np.float32).repeat(n, axis=0))
    mean = tf.constant(np.tile(rng.normal(0, 1, (1, 3)), (n, 1)).astype(np.float32))
    logvar = tf.constant(np.tile(rng.normal(-1, 0.5, (1, 3)), (n, 1)).astype(np.float32))
    tf.random.set_seed(1)
    z = ReparameterizeOp().forward([mean, logvar], state={})
    logits = tf.tile(tf.reduce_sum(z, axis=1)[:, None, None, None], [1, 4, 4, 1])  # a decoder that depends on z
    data = [x, logits, mean, logvar, z]
    mc = CVAELoss(average_loss=False).forward(data, state={}).numpy()
    exact = AnalyticKLLoss(average_loss=False).forward(data, state={}).numpy()
    assert abs(mc.mean() - exact.mean()) < 4 * (mc - exact).std() / np.sqrt(n)
    # With a decoder that ignores z, all of the MC loss's spread is KL noise, which the closed form removes.
    data[1] = tf.zeros_like(logits)
    assert CVAELoss(average_loss=False).forward(data, state={}).numpy().std() > 0.5
    assert AnalyticKLLoss(average_loss=False).forward(data, state={}).numpy().std() < 1e-4


def test_same_contract_as_cvae_loss():
    loss = AnalyticKLLoss()
    assert loss.inputs == CVAELoss().inputs and loss.outputs == ["loss"] and "infer" not in loss.mode
    data = [tf.ones([1, 2, 2, 1]), tf.zeros([1, 2, 2, 1]), tf.zeros([1, 3]), tf.zeros([1, 3]), tf.ones([1, 3])]
    np.testing.assert_allclose(loss.forward(data, state={}).numpy(), 4 * np.log(2.0), rtol=1e-6)  # KL(N(0,1)||N(0,1))=0
