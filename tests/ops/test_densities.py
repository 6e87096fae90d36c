import math

import numpy as np
import pytest
import tensorflow as tf

from ops import (bernoulli_log_likelihood, bits_per_dim, discretized_logistic_log_likelihood, gaussian_log_likelihood,
                 kl_to_standard_normal, log_normal_pdf)
from ops.densities import log_mean_exp, monte_carlo_kl


def test_standard_normal_at_zero():
    # log N(0; 0, I_3) = -3/2 log(2 pi)
    got = log_normal_pdf(tf.zeros([1, 3]), 0.0, 0.0).numpy()
    np.testing.assert_allclose(got, [-1.5 * math.log(2 * math.pi)], rtol=1e-6)


def test_matches_closed_form_of_each_dimension():
    x, mu, var = np.array([[0.3, -1.2]]), np.array([[1.0, 0.5]]), np.array([[2.0, 0.1]])
    closed = sum(-0.5 * math.log(2 * math.pi * var[0, i]) - (x[0, i] - mu[0, i])**2 / (2 * var[0, i]) for i in range(2))
    got = log_normal_pdf(tf.constant(x, tf.float32), tf.constant(mu, tf.float32), tf.constant(np.log(var), tf.float32))
    np.testing.assert_allclose(got.numpy(), [closed], rtol=1e-5)


def test_bernoulli_sums_over_all_pixels():
    x = tf.constant([[[[1.0], [0.0]], [[1.0], [1.0]]]])  # [1, 2, 2, 1]
    logits = tf.constant([[[[0.0], [0.0]], [[math.log(3.0)], [-math.log(3.0)]]]])
    # log .5 + log .5 + log sigmoid(log 3) + log sigmoid(-log 3) = 2 log .5 + log .75 + log .25
    expected = 2 * math.log(0.5) + math.log(0.75) + math.log(0.25)
    np.testing.assert_allclose(bernoulli_log_likelihood(x, logits).numpy(), [expected], rtol=1e-6)


def test_bernoulli_is_stable_for_huge_logits():
    got = bernoulli_log_likelihood(tf.constant([[1.0, 0.0]]), tf.constant([[200.0, -200.0]])).numpy()
    np.testing.assert_allclose(got, [0.0], atol=1e-6)


def test_kl_to_standard_normal_closed_form():
    # KL(N(1, 4) || N(0, 1)) = 1/2 (4 + 1 - 1 - log 4); the second dimension is N(0, 1) itself: 0.
    got = kl_to_standard_normal(tf.constant([[1.0, 0.0]]), tf.constant([[math.log(4.0), 0.0]])).numpy()
    np.testing.assert_allclose(got, [0.5 * (4 + 1 - 1 - math.log(4))], rtol=1e-6)


def test_gaussian_log_likelihood_by_hand():
    # Two examples of two pixels; per pixel -1/2 ((x - m) / s)^2 - log s - 1/2 log 2 pi, summed per example.
    x = np.array([[0.2, 0.9], [0.5, 0.0]])
    mean = np.array([[0.0, 1.0], [0.5, 0.25]])
    log_scale = np.array([[0.0, math.log(0.5)], [math.log(2.0), 0.0]])
    expected = [(-0.5 * 0.04 - 0.0) + (-0.5 * 0.04 + math.log(2.0)) - math.log(2 * math.pi),
                (-0.5 * 0.0 - math.log(2.0)) + (-0.5 * 0.0625 - 0.0) - math.log(2 * math.pi)]
    got = gaussian_log_likelihood(*(tf.constant(t, tf.float32) for t in (x, mean, log_scale)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    scalar = gaussian_log_likelihood(tf.constant(x, tf.float32), tf.constant(mean, tf.float32), 0.0)  # one scale
    np.testing.assert_allclose(scalar.numpy(), -0.5 * ((x - mean)**2).sum(1) - math.log(2 * math.pi), rtol=1e-5)


def _logistic_cdf(t):
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # 1 / (1 + exp(-t)), without overflow


@pytest.mark.parametrize("mean, scale", [(0.3, 0.05), (0.0, 0.2), (1.0, 0.01), (0.5, 0.0005)])
def test_discretized_logistic_is_a_distribution_over_the_256_values(mean, scale):
    """exp(log P(k / 255)) over all 256 values sums to 1; each value is the logistic mass of its bin (edges open)."""
    x = np.arange(256) / 255.0
    log_p = discretized_logistic_log_likelihood(tf.constant(x[:, None], tf.float32),
                                                tf.fill([256, 1], float(mean)), math.log(scale)).numpy()
    h = 0.5 / 255
    upper = np.where(x > 1 - h, 1.0, _logistic_cdf((x + h - mean) / scale))
    lower = np.where(x < h, 0.0, _logistic_cdf((x - h - mean) / scale))
    assert np.exp(log_p.astype(np.float64)).sum() == pytest.approx(1.0, abs=2e-3)
    big = upper - lower > 1e-4  # where the bin holds real mass, compare the log-probabilities themselves
    np.testing.assert_allclose(log_p[big], np.log((upper - lower)[big]), atol=2e-3)


def test_discretized_logistic_sums_pixels_per_example():
    x = tf.constant([[[0.0, 1.0]], [[128 / 255, 128 / 255]]])
    per_pixel = discretized_logistic_log_likelihood(tf.reshape(x, [4, 1]), tf.fill([4, 1], 0.5), math.log(0.1))
    per_example = discretized_logistic_log_likelihood(x, tf.fill([2, 1, 2], 0.5), math.log(0.1))
    np.testing.assert_allclose(per_example.numpy(), per_pixel.numpy().reshape(2, 2).sum(1), rtol=1e-6)


def test_bits_per_dim():
    # A uniform guess over 256 values: log P = -D log 256, exactly 8 bits per dimension.
    assert float(bits_per_dim(-784 * math.log(256.0), 784)) == pytest.approx(8.0)
    assert float(bits_per_dim(tf.constant(-784 * math.log(2.0)), 784)) == pytest.approx(1.0)


def test_log_mean_exp_by_hand_and_stable():
    # log((1 + 3) / 2) = log 2, along either axis; and shifted by 1000 it neither overflows nor loses the log 2.
    values = tf.constant([[0.0, math.log(3.0)], [0.0, math.log(3.0)]], tf.float64)
    np.testing.assert_allclose(log_mean_exp(values, axis=1).numpy(), [math.log(2.0)] * 2, rtol=1e-12)
    np.testing.assert_allclose(log_mean_exp(values + 1000.0, axis=1).numpy(), [1000.0 + math.log(2.0)] * 2, rtol=1e-12)
    np.testing.assert_allclose(log_mean_exp(values, axis=0).numpy(), [0.0, math.log(3.0)], rtol=1e-12)


def test_monte_carlo_kl_by_hand():
    # At z = mean = 0 with logvar 0, q = p: 0. At z = 1, mean 1, variance 1/4 (one dimension):
    # log q = -1/2 (log 2 pi + log 1/4), log p = -1/2 (log 2 pi + 1): log q - log p = 1/2 (log 4 + 1).
    assert float(monte_carlo_kl(tf.zeros([1, 3]), 0.0, 0.0)[0]) == pytest.approx(0.0, abs=1e-6)
    got = monte_carlo_kl(tf.ones([1, 1]), tf.ones([1, 1]), tf.constant([[math.log(0.25)]]))
    assert float(got[0]) == pytest.approx(0.5 * (math.log(4.0) + 1.0), rel=1e-6)


def test_bits_per_dim_of_each_likelihood():
    """Binary pixels under a Bernoulli: -ll / (D ln 2). Grey levels under a Bernoulli: a cross-entropy, not a
    likelihood of the data: None. A Gaussian density on [0, 1]: rescaled to 0..255 first (-D ln 255 nats)."""
    from ops.densities import bits_per_dim_of
    assert bits_per_dim_of("bernoulli", -100.0, 784, binarized=True) == pytest.approx(100 / (784 * math.log(2)))
    assert bits_per_dim_of("bernoulli", -100.0, 784, binarized=False) is None
    assert bits_per_dim_of("discretized_logistic", -5000.0, 3072, False) == pytest.approx(5000 / (3072 * math.log(2)))
    assert bits_per_dim_of("gaussian", 1000.0, 784, False) == pytest.approx(
        -(1000.0 - 784 * math.log(255.0)) / (784 * math.log(2)))
