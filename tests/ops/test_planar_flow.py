"""PlanarFlow: the map and its log-determinant against NumPy and a numerical Jacobian, the invertibility constraint,
and the density it writes."""
import math

import numpy as np
import pytest
import tensorflow as tf

from ops import PlanarFlow
from pipeline_vae.models import build_planar_flow


def flow_with(u, w, b):
    """A PlanarFlow whose model holds these raw parameters ([K, L], [K, L], [K])."""
    steps, latent = u.shape
    model = build_planar_flow(steps, latent)
    for name, value in (("u", u), ("w", w), ("b", b)):
        model.get_layer(name).set_weights([np.asarray(value, np.float32).reshape(1, -1)])
    return PlanarFlow(model, steps)


def np_u_hat(u, w):
    wu = np.sum(w * u, axis=1, keepdims=True)
    return u + (-1.0 + np.log1p(np.exp(wu)) - wu) * w / np.sum(w * w, axis=1, keepdims=True)


def np_flow(z, u, w, b):
    """f_K o ... o f_1 (z) with f(z) = z + u^ tanh(w.z + b), in float64."""
    u_hat = np_u_hat(np.asarray(u, np.float64), np.asarray(w, np.float64))
    z = np.asarray(z, np.float64)
    for k in range(len(b)):
        z = z + np.tanh(z @ w[k] + b[k])[:, None] * u_hat[k]
    return z


def test_the_map_and_its_log_determinant_match_numpy_and_a_numerical_jacobian():
    rng = np.random.default_rng(0)
    u, w, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    flow = flow_with(u, w, b)
    z = rng.normal(size=(6, 4)).astype(np.float32)
    z_k, log_det = flow.transform(tf.constant(z))
    np.testing.assert_allclose(z_k.numpy(), np_flow(z, u, w, b), rtol=1e-5, atol=1e-5)
    h = 1e-4  # central differences of the map itself, in float64: d f / d z_j for each sample
    for i in range(len(z)):
        jacobian = np.stack([(np_flow(z[i:i + 1] + h * e, u, w, b) - np_flow(z[i:i + 1] - h * e, u, w, b))[0] / (2 * h)
                             for e in np.eye(4)], axis=1)
        sign, logdet = np.linalg.slogdet(jacobian)
        assert sign > 0 and abs(logdet - float(log_det[i])) < 1e-3


def test_every_step_stays_invertible_whatever_its_raw_parameters():
    """With w.u far below -1 the raw step would fold space (det <= 0); the constrained u^ keeps w.u^ > -1."""
    w = np.array([[1.0, 2.0]])
    u = -5.0 * w  # w.u = -25
    flow = flow_with(u, w, np.zeros(1))
    u_hat, w_used, _ = flow.parameters(2)
    assert float(tf.reduce_sum(u_hat * w_used)) > -1.0
    np.testing.assert_allclose(u_hat.numpy(), np_u_hat(u, w), rtol=1e-5)
    z = np.random.default_rng(1).normal(scale=3.0, size=(50, 2)).astype(np.float32)
    assert np.all(np.isfinite(flow.transform(tf.constant(z))[1].numpy()))


def test_it_writes_the_flow_sample_and_its_density_for_k_samples_per_image():
    rng = np.random.default_rng(2)
    u, w, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    flow = flow_with(u, w, b)
    mean, logvar = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    z = rng.normal(size=(6, 3)).astype(np.float32)  # 3 samples of 2 images, sample-major
    z_k, log_qz = flow.forward([tf.constant(mean), tf.constant(logvar), tf.constant(z)], {})
    _, log_det = flow.transform(tf.constant(z))
    m, v = np.tile(mean, (3, 1)), np.tile(logvar, (3, 1))
    log_q0 = np.sum(-0.5 * (math.log(2 * math.pi) + v + (z - m)**2 / np.exp(v)), axis=1)
    np.testing.assert_allclose(log_qz.numpy(), log_q0 - log_det.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z_k.numpy(), np_flow(z, u, w, b), rtol=1e-5, atol=1e-5)
    assert flow.get_fe_models() == {flow.model}
    with pytest.raises(ValueError, match="2 steps on 5 units need 22"):
        flow.transform(tf.zeros([1, 5]))
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        PlanarFlow(flow.model, 0)


def test_the_flow_density_is_a_density():
    """Monte Carlo: E_{z0 ~ q0}[exp(log p(f(z0)) - log q_K(f(z0)))] = 1 for a normalized target p (here N(0, I)),
    i.e. q_K integrates to one; checked to 3 standard errors over 200k draws."""
    rng = np.random.default_rng(3)
    flow = flow_with(0.5 * rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), rng.normal(size=2))
    mean, logvar = np.zeros((1, 2), np.float32), np.full((1, 2), -0.5, np.float32)
    z0 = (rng.normal(size=(200000, 2)) * np.exp(-0.25)).astype(np.float32)
    z_k, log_qz = flow.forward([tf.constant(mean), tf.constant(logvar), tf.constant(z0)], {})
    target = np.sum(-0.5 * (math.log(2 * math.pi) + z_k.numpy().astype(np.float64)**2), axis=1)
    ratio = np.exp(target - log_qz.numpy())
    assert abs(ratio.mean() - 1.0) < 3 * ratio.std() / math.sqrt(len(ratio))
