"""The three decoder likelihoods of `ops.densities.LIKELIHOODS`, against float64 NumPy written here from the
definitions, and the loss ops that use them."""
import math

import numpy as np
import pytest
import tensorflow as tf

from ops import AnalyticKLLoss, BetaVAELoss, CVAELoss, IWAELoss, KLWarmupLoss
from ops.densities import (GAUSSIAN_LOG_SCALE_MIN, LIKELIHOODS, LOG_SCALE_MAX, LOGISTIC_LOG_SCALE_MIN,
                           bits_per_dim_of, get_likelihood)

RNG = np.random.default_rng(0)
X = np.round(RNG.random((3, 4, 5, 2)) * 255) / 255  # 8-bit levels, two channels
X[0, 0, 0, 0], X[0, 0, 1, 0], X[1, 2, 3, 1] = 0.0, 1.0, 0.0  # both edges of the grid
RAW = RNG.normal(0, 2, (3, 4, 5, 4))  # location (first 2 channels) and log-scale (last 2) before squashing
RAW[0, 0, 2, 2], RAW[0, 0, 3, 3] = -12.0, 9.0  # beyond both log-scale clips


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _params(low):
    return _sigmoid(RAW[..., :2]), np.clip(RAW[..., 2:], low, LOG_SCALE_MAX)


def _logistic_cdf(v):
    return _sigmoid(v)


def test_bernoulli_is_the_summed_log_probability_of_the_pixels():
    x = (X[..., :1] > 0.5).astype(np.float64)
    p = _sigmoid(RAW[..., :1])
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    got = LIKELIHOODS["bernoulli"].log_prob(tf.constant(x, tf.float32), tf.constant(RAW[..., :1], tf.float32))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_gaussian_uses_a_sigmoid_location_and_a_clipped_log_scale():
    mean, log_scale = _params(GAUSSIAN_LOG_SCALE_MIN)
    expected = np.sum(-0.5 * ((X - mean) / np.exp(log_scale))**2 - log_scale - 0.5 * math.log(2 * math.pi),
                      axis=(1, 2, 3))
    got = LIKELIHOODS["gaussian"].log_prob(tf.constant(X, tf.float32), tf.constant(RAW, tf.float32))
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-5)
    assert GAUSSIAN_LOG_SCALE_MIN == pytest.approx(-math.log(255))


def test_discretized_logistic_is_the_mass_of_each_pixel_bin():
    mean, log_scale = _params(LOGISTIC_LOG_SCALE_MIN)
    s, h = np.exp(log_scale), 0.5 / 255
    upper = np.where(X > 1 - h, 1.0, _logistic_cdf((X + h - mean) / s))
    lower = np.where(X < h, 0.0, _logistic_cdf((X - h - mean) / s))
    mass = upper - lower
    centre = (X - mean) / s  # PixelCNN++: below 1e-5 of mass, the density at the centre times the bin width
    sharp = -centre - log_scale - 2 * np.logaddexp(0, -centre) + np.log(2 * h)  # log of the logistic pdf, in logs
    edge = (X < h) | (X > 1 - h)
    log_edge = np.where(X < h, -np.logaddexp(0, -(X + h - mean) / s), -np.logaddexp(0, (X - h - mean) / s))
    with np.errstate(divide="ignore"):
        log_p = np.where(edge, log_edge, np.where(mass > 1e-5, np.log(mass), sharp))
    assert np.sum(~edge & (mass <= 1e-5)) >= 1 and np.sum(mass > 1e-5) > 100  # both branches are exercised
    got = LIKELIHOODS["discretized_logistic"].log_prob(tf.constant(X, tf.float32), tf.constant(RAW, tf.float32))
    np.testing.assert_allclose(got.numpy(), np.sum(log_p, axis=(1, 2, 3)), rtol=1e-4)


def test_mean_images_are_in_the_unit_interval_with_the_images_channels():
    for name, out in (("bernoulli", RAW[..., :2]), ("gaussian", RAW), ("discretized_logistic", RAW)):
        mean = LIKELIHOODS[name].mean(tf.constant(out, tf.float32)).numpy()
        assert mean.shape == X.shape and 0 < mean.min() and mean.max() < 1, name
        np.testing.assert_allclose(mean, _sigmoid(RAW[..., :2]), rtol=1e-5)


@pytest.mark.parametrize("loss_class", [CVAELoss, AnalyticKLLoss, BetaVAELoss, KLWarmupLoss])
@pytest.mark.parametrize("likelihood", ["gaussian", "discretized_logistic"])
def test_each_loss_op_uses_its_likelihood(loss_class, likelihood):
    """With z = mean = 0 and logvar = 0 both KL terms are 0, so the loss is minus the log-likelihood."""
    op = loss_class(likelihood=likelihood, average_loss=False)
    zeros = tf.zeros([3, 2])
    loss = op.forward([tf.constant(X, tf.float32), tf.constant(RAW, tf.float32), zeros, zeros, zeros],
                      {"mode": "eval", "epoch": 1})
    expected = LIKELIHOODS[likelihood].log_prob(tf.constant(X, tf.float32), tf.constant(RAW, tf.float32))
    np.testing.assert_allclose(loss.numpy(), -expected.numpy(), rtol=1e-6)


def test_iwae_with_a_two_parameter_likelihood():
    op = IWAELoss(k=2, likelihood="discretized_logistic", average_loss=False)
    x, raw = tf.constant(X, tf.float32), tf.constant(RAW, tf.float32)
    zeros = tf.zeros([3, 2])
    out = tf.concat([raw, raw], axis=0)  # sample-major: both samples of each image decode the same
    loss = op.forward([x, out, zeros, zeros, tf.zeros([6, 2])], {"mode": "train"})
    expected = LIKELIHOODS["discretized_logistic"].log_prob(x, raw)
    np.testing.assert_allclose(loss.numpy(), -expected.numpy(), rtol=1e-6)  # two equal weights: their mean


def test_a_decoder_output_of_the_wrong_size_is_a_clear_error():
    zeros = tf.zeros([3, 2])
    with pytest.raises(ValueError, match=r"the discretized_logistic likelihood needs a decoder output of "
                       r"\(3, 4, 5, 4\) \(2 value\(s\) per image channel\) for images \(3, 4, 5, 2\), got \(3, 4, 5, 2\)"):
        CVAELoss(likelihood="discretized_logistic").forward(
            [tf.constant(X, tf.float32), tf.constant(RAW[..., :2], tf.float32), zeros, zeros, zeros], {})
    with pytest.raises(ValueError, match="CVAELoss: unknown likelihood 'poisson'; expected one of bernoulli, gaussian, "
                       "discretized_logistic"):
        CVAELoss(likelihood="poisson")
    with pytest.raises(ValueError, match="unknown likelihood 'laplace'"):
        get_likelihood("laplace")


def test_bits_per_dim():
    dims = 784
    assert bits_per_dim_of("discretized_logistic", -dims * math.log(2), dims, False) == pytest.approx(1.0)
    assert bits_per_dim_of("bernoulli", -dims * math.log(2) / 2, dims, True) == pytest.approx(0.5)
    assert bits_per_dim_of("bernoulli", -100.0, dims, False) is None  # a cross-entropy on grey levels
    # a density on [0, 1]: log p(y in 0..255) = log p(x) - dims * log(255)
    assert bits_per_dim_of("gaussian", dims * math.log(255) - dims * math.log(2), dims, False) == pytest.approx(1.0)
