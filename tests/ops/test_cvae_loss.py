import math

import numpy as np
import pytest
import tensorflow as tf

from ops import CVAELoss


def seed_formula(x, logit, mean, logvar, z):
    """The seed tutorial's loss written out in NumPy: -mean(log p(x|z) + log p(z) - log q(z|x))."""
    p = 1 / (1 + np.exp(-logit))
    logpx_z = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    logpz = np.sum(-0.5 * (z**2 + math.log(2 * math.pi)), axis=1)
    logqz_x = np.sum(-0.5 * ((z - mean)**2 * np.exp(-logvar) + logvar + math.log(2 * math.pi)), axis=1)
    return -(logpx_z + logpz - logqz_x)


def test_hand_computed_value():
    # x all ones, logits 0 -> log p(x|z) = 4 log(1/2); z = mean = 0, logvar = 0 -> log p(z) = log q(z|x).
    data = [tf.ones([1, 2, 2, 1]), tf.zeros([1, 2, 2, 1]), tf.zeros([1, 3]), tf.zeros([1, 3]), tf.zeros([1, 3])]
    loss = CVAELoss().forward(data, state={"mode": "train"})
    np.testing.assert_allclose(loss.numpy(), 4 * math.log(2.0), rtol=1e-6)


def test_equals_the_seed_formula_on_fixed_tensors():
    rng = np.random.default_rng(3)
    x = (rng.random((5, 28, 28, 1)) > 0.5).astype(np.float32)
    logit = rng.normal(0, 2, (5, 28, 28, 1)).astype(np.float32)
    mean, logvar, z = (rng.normal(0, 1, (5, 4)).astype(np.float32) for _ in range(3))
    tensors = [tf.constant(a) for a in (x, logit, mean, logvar, z)]
    per_example = CVAELoss(average_loss=False).forward(tensors, state={}).numpy()
    expected = seed_formula(*(a.astype(np.float64) for a in (x, logit, mean, logvar, z)))
    np.testing.assert_allclose(per_example, expected, rtol=1e-4)
    np.testing.assert_allclose(CVAELoss().forward(tensors, state={}).numpy(), expected.mean(), rtol=1e-4)


def test_image_shape_mismatch_is_a_clear_error():
    data = [tf.ones([1, 28, 28, 1]), tf.zeros([1, 14, 14, 1]), tf.zeros([1, 2]), tf.zeros([1, 2]), tf.zeros([1, 2])]
    with pytest.raises(ValueError, match="'x_logit' for 'x': the bernoulli likelihood needs a decoder output of"):
        CVAELoss().forward(data, state={})


def test_needs_five_inputs():
    with pytest.raises(ValueError, match="needs 5 inputs"):
        CVAELoss(inputs=("x", "x_logit"))


def test_never_runs_at_inference():
    assert "infer" not in CVAELoss().mode and {"train", "eval"} <= CVAELoss().mode
