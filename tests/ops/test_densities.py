import math

import numpy as np
import tensorflow as tf

from ops import bernoulli_log_likelihood, kl_to_standard_normal, log_normal_pdf


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
