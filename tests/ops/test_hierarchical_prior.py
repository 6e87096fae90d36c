"""HierarchicalPrior (two stochastic layers): its log-density estimate, ancestral draws and the two-layer ELBO terms,
against NumPy written here."""
import math

import numpy as np
import tensorflow as tf

from ops import HierarchicalPrior
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import _Evaluator
from pipeline_vae.models import build_hierarchical_prior
from tests.numpy_reference import np_log_normal


def np_nets(model):
    """q(z2|z1) and p(z1|z2) of a `build_hierarchical_prior` model, by hand: two tanh layers, then a linear one."""
    w = {layer.name: [v.astype(np.float64) for v in layer.get_weights()] for layer in model.layers if layer.weights}

    def net(x, names):
        for name in names[:-1]:
            x = np.tanh(x @ w[name][0] + w[name][1])
        out = x @ w[names[-1]][0] + w[names[-1]][1]
        half = out.shape[1] // 2
        return out[:, :half], np.clip(out[:, half:], -30, 20)

    return (lambda z1: net(z1, ("q_hidden_1", "q_hidden_2", "q_z2")),
            lambda z2: net(z2, ("p_hidden_1", "p_hidden_2", "p_z1")))


def test_log_p_z_is_the_two_layer_estimate_at_the_given_z2_noise():
    model = build_hierarchical_prior(latent_dim=4, upper_latent_dim=3)
    op = HierarchicalPrior(model, 3)
    q, p = np_nets(model)
    rng = np.random.default_rng(0)
    z1, eps = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    mean2, logvar2 = q(z1)
    z2 = mean2 + np.exp(0.5 * logvar2) * eps
    mean1, logvar1 = p(z2)
    expected = np_log_normal(z1, mean1, logvar1) + np_log_normal(z2, 0, 0) - np_log_normal(z2, mean2, logvar2)
    np.testing.assert_allclose(op.log_prob(tf.constant(z1), tf.constant(eps)).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert op.noise_size(4) == 7 and op.get_fe_models() == {model}
    assert op.forward(tf.constant(z1), {}).shape == (6, )  # in a graph it draws its own z2 noise


def test_its_estimate_is_unbiased_for_the_marginal_p_z1():
    """E_q(z2|z1)[exp(log_pz)] = p(z1) = E_p(z2)[p(z1|z2)]: the op's importance-sampling average against a plain
    Monte Carlo average over the prior, both over 200k draws, within 4 standard errors."""
    tf.keras.utils.set_random_seed(3)
    model = build_hierarchical_prior(latent_dim=1, upper_latent_dim=1)
    op = HierarchicalPrior(model, 1)
    _, p = np_nets(model)
    rng = np.random.default_rng(1)
    z1 = np.array([[0.7]], np.float32)
    n = 200000
    estimate = np.exp(op.log_prob(tf.constant(np.repeat(z1, n, 0)),
                                  tf.constant(rng.normal(size=(n, 1)).astype(np.float32))).numpy().astype(np.float64))
    mean1, logvar1 = p(rng.normal(size=(n, 1)))
    direct = np.exp(np_log_normal(np.repeat(z1, n, 0), mean1, logvar1))
    se = math.sqrt(estimate.var() / n + direct.var() / n)
    assert abs(estimate.mean() - direct.mean()) < 4 * se


def test_ancestral_draws_and_the_two_layer_iw_weights():
    model = build_hierarchical_prior(latent_dim=2, upper_latent_dim=1)
    op = HierarchicalPrior(model, 1)
    q, p = np_nets(model)
    rng = np.random.default_rng(2)
    eps = rng.normal(size=(5, 3)).astype(np.float32)  # z1's noise, then z2's
    mean1, logvar1 = p(eps[:, 2:])
    np.testing.assert_allclose(op.sample(tf.constant(eps), tf.zeros([5])).numpy(),
                               mean1 + np.exp(0.5 * logvar1) * eps[:, :2], rtol=1e-4, atol=1e-5)
    # evaluate's log weights: log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1), per sample.
    encoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, 2, 1)), tf.keras.layers.Flatten(),
                                   tf.keras.layers.Dense(4)])
    decoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, )), tf.keras.layers.Dense(4),
                                   tf.keras.layers.Reshape((2, 2, 1))])
    vae = CVAE(encoder, decoder, binarize_threshold=0.5, prior=op)
    assert vae.noise_dim == 3
    x = (rng.random((4, 2, 2, 1)) > 0.5).astype(np.float32)
    noise = rng.normal(size=(2, 4, 3)).astype(np.float32)
    evaluator = _Evaluator(vae)
    log_w = evaluator.log_weights(tf.constant(x), tf.constant(noise)).numpy()
    out = np.tile(encoder(x).numpy(), (2, 1))
    mean, logvar = out[:, :2], out[:, 2:]
    flat = noise.reshape(8, 3)
    z1 = mean + np.exp(0.5 * logvar) * flat[:, :2]
    mean2, logvar2 = q(z1)
    z2 = mean2 + np.exp(0.5 * logvar2) * flat[:, 2:]
    m1, v1 = p(z2)
    logits = decoder(z1.astype(np.float32)).numpy().reshape(8, -1).astype(np.float64)
    targets = np.tile(x, (2, 1, 1, 1)).reshape(8, -1)
    log_px = np.sum(targets * logits - np.logaddexp(0, logits), axis=1)
    expected = (log_px + np_log_normal(z1, m1, v1) + np_log_normal(z2, 0, 0) - np_log_normal(z1, mean, logvar)
                - np_log_normal(z2, mean2, logvar2)).reshape(2, 4)
    np.testing.assert_allclose(log_w, expected, rtol=1e-4, atol=1e-3)
