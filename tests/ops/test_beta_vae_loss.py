import math

import numpy as np
import pytest
import tensorflow as tf

from ops import AnalyticKLLoss, BetaVAELoss

# x: 4 ones, logits 0 -> -log p(x|z) = 4 log 2; mean (1, 0, 0), logvar 0 -> KL = 1/2.
DATA = [tf.ones([1, 2, 2, 1]), tf.zeros([1, 2, 2, 1]), tf.constant([[1.0, 0.0, 0.0]]), tf.zeros([1, 3]),
        tf.zeros([1, 3])]


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_beta_weights_the_kl_term_in_train_mode(beta):
    loss = BetaVAELoss(beta=beta).forward(DATA, state={"mode": "train"}).numpy()
    np.testing.assert_allclose(loss, 4 * math.log(2.0) + beta * 0.5, rtol=1e-6)


@pytest.mark.parametrize("mode", ["eval", "test"])
def test_other_modes_report_the_plain_negative_elbo(mode):
    loss = BetaVAELoss(beta=4.0).forward(DATA, state={"mode": mode}).numpy()
    np.testing.assert_allclose(loss, 4 * math.log(2.0) + 0.5, rtol=1e-6)


def test_beta_one_is_analytic_kl_loss():
    rng = np.random.default_rng(0)
    data = [tf.constant((rng.random((8, 5, 5, 1)) > 0.5).astype(np.float32)),
            tf.constant(rng.normal(size=(8, 5, 5, 1)).astype(np.float32))]
    data += [tf.constant(rng.normal(size=(8, 3)).astype(np.float32)) for _ in range(3)]
    np.testing.assert_allclose(BetaVAELoss(beta=1.0).forward(data, state={"mode": "train"}).numpy(),
                               AnalyticKLLoss().forward(data, state={"mode": "train"}).numpy(), rtol=1e-6)


@pytest.mark.parametrize("beta", [-1.0, float("inf"), float("nan"), "1", None, True])
def test_beta_must_be_a_finite_non_negative_number(beta):
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        BetaVAELoss(beta=beta)
