"""The prior slot's ops (StandardNormalPrior, MixturePrior, VampPrior) and the mixture density, against NumPy."""
import math

import numpy as np
import pytest
import tensorflow as tf

from ops import MixturePrior, StandardNormalPrior, VampPrior
from ops.densities import gaussian_negative_entropy, log_normal_mixture
from pipeline_vae.models import build_mixture_prior, build_pseudo_inputs
from tests.numpy_reference import np_log_normal, np_mixture


def test_the_mixture_density_matches_numpy_even_for_far_components():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 4)).astype(np.float32)
    means = rng.normal(scale=3.0, size=(5, 4)).astype(np.float32)
    means[0] += 40.0  # a component whose density underflows float32 at every z: log-sum-exp keeps the rest exact
    logvars = rng.normal(scale=0.5, size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(log_normal_mixture(z, means, logvars).numpy(), np_mixture(z, means, logvars),
                               rtol=1e-5, atol=1e-4)
    # One component is the Gaussian itself; C equal components are too (the weights are 1/C).
    np.testing.assert_allclose(log_normal_mixture(z, means[:1], logvars[:1]).numpy(),
                               np_log_normal(z, means[0], logvars[0]), rtol=1e-5)
    same = np.repeat(means[1:2], 3, axis=0), np.repeat(logvars[1:2], 3, axis=0)
    np.testing.assert_allclose(log_normal_mixture(z, *same).numpy(), np_log_normal(z, means[1], logvars[1]),
                               rtol=1e-5)
    # Leading axes broadcast: samples [k, B, L] give [k, B].
    assert log_normal_mixture(z.reshape(7, 1, 4).repeat(3, axis=1), means, logvars).shape == (7, 3)


def test_the_gaussian_negative_entropy_matches_its_closed_form_and_a_monte_carlo_estimate():
    logvar = np.array([[-1.0, 0.5, 2.0], [0.0, 0.0, 0.0]], np.float32)
    expected = -0.5 * np.sum(1 + math.log(2 * math.pi) + logvar, axis=-1)
    np.testing.assert_allclose(gaussian_negative_entropy(logvar).numpy(), expected, rtol=1e-6)
    eps = np.random.default_rng(1).normal(size=(200000, 3))
    samples = eps * np.exp(0.5 * logvar[0])
    assert abs(np.mean(np_log_normal(samples, 0.0, logvar[0])) - expected[0]) < 0.02  # E_q[log q]


def test_the_standard_normal_prior_writes_log_n_0_i_per_sample():
    op = StandardNormalPrior(inputs="z", outputs="log_pz")
    z = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    out = op.forward(tf.constant(z), {})
    np.testing.assert_allclose(out.numpy(), np_log_normal(z, 0.0, 0.0), rtol=1e-6)
    with pytest.raises(ValueError, match="must be \\[N, latent_dim\\]"):
        op.forward(tf.zeros([2, 3, 4]), {})


def test_the_mixture_prior_reads_its_means_and_log_variances_from_its_model():
    rng = np.random.default_rng(3)
    model = build_mixture_prior(components=4, latent_dim=3)
    means = rng.normal(size=(4, 3)).astype(np.float32)
    logvars = rng.normal(scale=0.3, size=(4, 3)).astype(np.float32)
    model.get_layer("means").set_weights([means.reshape(1, -1)])
    model.get_layer("logvars").set_weights([logvars.reshape(1, -1)])
    op = MixturePrior(model, components=4)
    z = rng.normal(size=(9, 3)).astype(np.float32)
    np.testing.assert_allclose(op.forward(tf.constant(z), {}).numpy(), np_mixture(z, means, logvars), rtol=1e-5,
                               atol=1e-5)
    assert op.get_fe_models() == {model}
    with tf.GradientTape() as tape:  # the prior's term trains its parameters
        loss = -tf.reduce_mean(op.forward(tf.constant(z), {}))
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(grads) == 2 and all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    with pytest.raises(ValueError, match="4 components of 5 units need 40"):
        op.forward(tf.zeros([2, 5]), {})
    with pytest.raises(ValueError, match="components must be a positive integer, got 0"):
        MixturePrior(model, components=0)


def test_the_vamp_prior_is_the_mixture_of_the_pseudo_inputs_posteriors():
    rng = np.random.default_rng(4)
    shape, k, latent = (2, 3, 1), 5, 2
    encoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=shape), tf.keras.layers.Flatten(),
                                   tf.keras.layers.Dense(2 * latent)])
    pseudo = build_pseudo_inputs(k, shape)
    logits = rng.normal(size=(1, k * 6)).astype(np.float32)
    pseudo.get_layer("pseudo_inputs").set_weights([logits])
    op = VampPrior(pseudo, components=k, image_shape=shape, encoder=encoder)
    # By hand: u_k = sigmoid(logits) as K images; the encoder's Dense gives [mean, logvar] of each.
    u = (1 / (1 + np.exp(-logits))).reshape(k, 6)
    w, b = (v.numpy().astype(np.float64) for v in encoder.weights)
    out = u @ w + b
    means, logvars = out[:, :latent], np.clip(out[:, latent:], -30, 20)
    z = rng.normal(size=(8, latent)).astype(np.float32)
    np.testing.assert_allclose(op.forward(tf.constant(z), {}).numpy(), np_mixture(z, means, logvars), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(op.pseudo_inputs().numpy().reshape(k, 6), u, rtol=1e-5)
    with tf.GradientTape() as tape:  # its term trains both the pseudo-inputs and the encoder
        loss = -tf.reduce_mean(op.forward(tf.constant(z), {}))
    grads = tape.gradient(loss, pseudo.trainable_variables + encoder.trainable_variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    unbound = VampPrior(pseudo, components=k, image_shape=shape)
    with pytest.raises(ValueError, match="no encoder"):
        unbound.forward(tf.constant(z), {})
    unbound.bind_encoder(encoder)
    np.testing.assert_allclose(unbound.forward(tf.constant(z), {}).numpy(), op.forward(tf.constant(z), {}).numpy())
    with pytest.raises(ValueError, match="image_shape must be three positive integers"):
        VampPrior(pseudo, components=k, image_shape=(2, 3))
