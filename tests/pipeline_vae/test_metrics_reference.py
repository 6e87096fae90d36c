"""pipeline_vae.metrics against an independent NumPy implementation of the same quantities.

A small fixed model (an MLP pair with weights drawn from a seeded NumPy generator) and six distinct real test digits.
The Keras models only supply the network outputs (posterior parameters, decoder logits); every density, KL, ELBO, IW
bound and active-unit count is recomputed here in float64 NumPy from the textbook formulas, with the same noise the
code draws (`tf.random.Generator.from_seed(seed)`, one draw for the whole set: batch_size and max_decodes are set so
that nothing is chunked). Tolerances are 1e-3 nats: a log K offset (log 5 = 1.6), a sign flip, a factor 2 on a term or
a sample paired with the wrong image all miss by far more. The last test repeats the ELBO and IW bound with the
discretized logistic (two decoder outputs per pixel) on the 8-bit digits.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import ACTIVE_UNIT_THRESHOLD, evaluate, iw_bound
from pipeline_vae.models import build_mlp_decoder, build_mlp_encoder

LATENT, K, SEED, TOL = 3, 5, 7, 1e-3


def _log_sigmoid(t):
    return -np.logaddexp(0.0, -t)


def np_bernoulli(x, logits):
    """sum over pixels of x log sigma(l) + (1 - x) log(1 - sigma(l)), per row."""
    x, logits = x.reshape(len(x), -1), logits.reshape(len(logits), -1)
    return np.sum(x * _log_sigmoid(logits) + (1 - x) * _log_sigmoid(-logits), axis=1)


def np_log_normal(z, mean, logvar):
    return np.sum(-0.5 * (np.log(2 * np.pi) + logvar + (z - mean)**2 / np.exp(logvar)), axis=-1)


def np_kl(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, 1)), Kingma & Welling 2014, Appendix B."""
    return -0.5 * np.sum(1 + logvar - mean**2 - np.exp(logvar), axis=-1)


@pytest.fixture(scope="module")
def fixed(mnist):
    """The model, six distinct binarized digits as the model sees them, and the network outputs."""
    encoder, decoder = build_mlp_encoder(LATENT, (16, )), build_mlp_decoder(LATENT, (16, ))
    rng = np.random.default_rng(0)
    for model in (encoder, decoder):
        model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    vae = CVAE(encoder, decoder)
    images = mnist.x_test[:6]
    x = (images >= 128).astype(np.float64)[..., None]  # binarized at 0.5, computed here from the uint8 values
    out = encoder(x.astype(np.float32)).numpy().astype(np.float64)
    mean, logvar = out[:, :LATENT], out[:, LATENT:]
    assert len({tuple(row) for row in x.reshape(6, -1)}) == 6  # distinct images, so a mis-pairing shows
    assert np.ptp(logvar) > 0.5 and np.ptp(mean) > 0.5  # the posteriors differ between images and dimensions
    return vae, images, x, mean, logvar


def decode(vae, z):
    return vae.decoder(z.astype(np.float32)).numpy().astype(np.float64)


def test_elbo_terms_and_active_units_equal_the_numpy_reference(fixed):
    vae, images, x, mean, logvar = fixed
    eps = tf.random.Generator.from_seed(SEED).normal([len(x), LATENT]).numpy().astype(np.float64)
    z = mean + np.exp(0.5 * logvar) * eps
    recon = np_bernoulli(x, decode(vae, z))
    kl_mc = np_log_normal(z, mean, logvar) - np_log_normal(z, 0.0, 0.0)
    kl = np_kl(mean, logvar)
    m = evaluate(vae, images, iw_samples=0, seed=SEED, batch_size=len(x), show_progress=False)
    assert m["reconstruction"] == pytest.approx(recon.mean(), abs=TOL)
    assert m["kl"] == pytest.approx(kl.mean(), abs=TOL)
    assert m["elbo_analytic"] == pytest.approx((recon - kl).mean(), abs=TOL)
    assert m["elbo_mc"] == pytest.approx((recon - kl_mc).mean(), abs=TOL)
    assert m["elbo_mc_se"] == pytest.approx((recon - kl_mc).std(ddof=1) / math.sqrt(len(x)), abs=TOL)
    assert m["active_units"] == int(np.sum(mean.var(axis=0) > ACTIVE_UNIT_THRESHOLD))
    assert m["kl"] > 0.5 and m["kl"] != pytest.approx(-m["reconstruction"], abs=1)  # the terms are not degenerate


def test_iw_bound_per_image_equals_the_numpy_reference(fixed):
    vae, images, x, mean, logvar = fixed
    eps = tf.random.Generator.from_seed(SEED).normal([K, len(x), LATENT]).numpy().astype(np.float64)
    z = mean[None] + np.exp(0.5 * logvar)[None] * eps  # [K, B, L]: sample k of image b at [k, b]
    log_px = np_bernoulli(np.broadcast_to(x[None], (K, ) + x.shape).reshape((K * len(x), ) + x.shape[1:]),
                          decode(vae, z.reshape(K * len(x), LATENT))).reshape(K, len(x))
    log_w = log_px + np_log_normal(z, 0.0, 0.0) - np_log_normal(z, mean[None], logvar[None])
    expected = np.array([math.log(np.mean(np.exp(col - col.max()))) + col.max() for col in log_w.T])
    got = iw_bound(vae, images, K, seed=SEED, max_decodes=K * len(x))
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    m = evaluate(vae, images, iw_samples=K, seed=SEED, batch_size=len(x), max_decodes=K * len(x),
                 show_progress=False)
    assert m["iw_bound"] == pytest.approx(expected.mean(), abs=TOL)
    assert np.all(expected >= log_w.mean(axis=0))  # (Jensen, on the reference itself)


def test_iw_bound_with_one_sample_is_the_monte_carlo_elbo_on_the_same_noise(fixed):
    vae, images, x, _, _ = fixed
    m = evaluate(vae, images, iw_samples=1, seed=SEED, batch_size=len(x), max_decodes=len(x), show_progress=False)
    assert m["iw_bound"] == pytest.approx(m["elbo_mc"], abs=1e-4)
    assert m["iw_bound_se"] == pytest.approx(m["elbo_mc_se"], abs=1e-4)


def test_iw_bound_chunked_over_samples_still_pairs_each_sample_with_its_image(fixed):
    """max_decodes below K: one image per call, its K samples in chunks; the noise order changes, so compare with
    the reference drawn the way the chunks draw it."""
    vae, images, x, mean, logvar = fixed
    rng = tf.random.Generator.from_seed(SEED)
    expected = []
    for b in range(len(x)):
        eps = np.concatenate([rng.normal([n, 1, LATENT]).numpy() for n in (2, 2, 1)])[:, 0].astype(np.float64)
        z = mean[b] + np.exp(0.5 * logvar[b]) * eps  # [K, L]
        log_w = (np_bernoulli(np.repeat(x[b:b + 1], K, axis=0), decode(vae, z)) + np_log_normal(z, 0.0, 0.0) -
                 np_log_normal(z, mean[b], logvar[b]))
        expected.append(np.log(np.mean(np.exp(log_w - log_w.max()))) + log_w.max())
    np.testing.assert_allclose(iw_bound(vae, images, K, seed=SEED, max_decodes=2), expected, atol=TOL, rtol=0)


def np_discretized_logistic(x, out):
    """log P(x) of 8-bit levels x under a logistic(sigmoid(loc), exp(clip(log_scale, -7, 5))) per pixel, per row, with
    both edge bins open-ended and PixelCNN++'s density fallback below 1e-5 of mass (float64, from the definition)."""
    loc, log_s = 1 / (1 + np.exp(-out[..., :1])), np.clip(out[..., 1:], -7.0, 5.0)
    h, s = 0.5 / 255, np.exp(log_s)
    upper, lower = (x + h - loc) / s, (x - h - loc) / s
    mass = 1 / (1 + np.exp(-upper)) - 1 / (1 + np.exp(-lower))
    centre = (x - loc) / s
    with np.errstate(divide="ignore"):
        inner = np.where(mass > 1e-5, np.log(np.maximum(mass, 1e-300)),
                         -centre - log_s - 2 * np.logaddexp(0, -centre) + np.log(2 * h))
    log_p = np.where(x < h, _log_sigmoid(upper), np.where(x > 1 - h, _log_sigmoid(-lower), inner))
    return log_p.reshape(len(x), -1).sum(axis=1)


def test_elbo_and_iw_bound_with_the_discretized_logistic_equal_the_numpy_reference(mnist):
    """Two decoder outputs per pixel: the K x B samples must still meet their own images (the targets are tiled to
    [K * B, H, W, 1] while the outputs have 2 channels), and bits/dim follow from the bound."""
    encoder, decoder = build_mlp_encoder(LATENT, (16, )), build_mlp_decoder(LATENT, (16, ), out_channels=2)
    rng = np.random.default_rng(1)
    for model in (encoder, decoder):
        model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    vae = CVAE(encoder, decoder, likelihood="discretized_logistic", binarize_threshold=None)
    images = mnist.x_test[:6]
    x = (images.astype(np.float64) / 255)[..., None]
    out = encoder(x.astype(np.float32)).numpy().astype(np.float64)
    mean, logvar = out[:, :LATENT], out[:, LATENT:]
    eps = tf.random.Generator.from_seed(SEED).normal([K, len(x), LATENT]).numpy().astype(np.float64)
    z = mean[None] + np.exp(0.5 * logvar)[None] * eps
    log_px = np_discretized_logistic(np.tile(x, (K, 1, 1, 1)), decode(vae, z.reshape(K * len(x), LATENT)))
    log_w = log_px.reshape(K, len(x)) + np_log_normal(z, 0.0, 0.0) - np_log_normal(z, mean[None], logvar[None])
    expected = np.array([math.log(np.mean(np.exp(col - col.max()))) + col.max() for col in log_w.T])
    m = evaluate(vae, images, iw_samples=K, seed=SEED, batch_size=len(x), max_decodes=K * len(x),
                 show_progress=False)
    assert m["iw_bound"] == pytest.approx(expected.mean(), abs=TOL)
    assert m["iw_bound_bpd"] == pytest.approx(-expected.mean() / (784 * math.log(2)), abs=1e-6)
    eps1 = tf.random.Generator.from_seed(SEED).normal([len(x), LATENT]).numpy().astype(np.float64)
    recon = np_discretized_logistic(x, decode(vae, mean + np.exp(0.5 * logvar) * eps1))
    assert m["reconstruction"] == pytest.approx(recon.mean(), abs=TOL)
    assert m["elbo_analytic"] == pytest.approx((recon - np_kl(mean, logvar)).mean(), abs=TOL)
