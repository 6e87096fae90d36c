"""The prior slot in a run: the losses, the bounds of `evaluate`, sampling and the saved files all use the run's prior
(checked against NumPy written here)."""
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from fastestimator.op.tensorop.model import UpdateOp

from ops import AnalyticKLLoss, CVAELoss, IWAELoss, MixturePrior, VampPrior
from pipeline_vae import get_estimator
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import _Evaluator
from pipeline_vae.models import build_mixture_prior
from pipeline_vae.slots import build_graph
from tests.numpy_reference import np_bernoulli, np_log_normal, np_mixture


@pytest.mark.parametrize("prior, cls", [("mixture", MixturePrior), ("vamp", VampPrior)])
def test_a_learned_prior_fills_the_slot_feeds_the_loss_and_is_trained(prior, cls):
    graph = build_graph(latent_dim=3, model="mlp", widths=(16, ), prior=prior, prior_components=4)
    slots = dict((name, op) for name, op in graph.named_ops if name != "update")
    assert isinstance(slots["prior"], cls) and slots["prior"].outputs == ["log_pz"]
    assert slots["loss"].inputs[-1] == "log_pz"  # the loss reads the prior's log p(z)
    assert [m.model_name for m in graph.models] == ["encoder", "decoder", "prior"]
    assert [op.model.model_name for name, op in graph.named_ops if isinstance(op, UpdateOp)] == [
        "encoder", "decoder", "prior"]
    if prior == "vamp":
        assert slots["prior"].encoder is graph.models[0]
    plain = build_graph(latent_dim=3, model="mlp", widths=(16, ))
    assert "prior" not in plain.describe() and len(dict(plain.named_ops)["loss"].inputs) == 5  # the seed's graph


def test_the_losses_use_log_p_z_when_given_it():
    rng = np.random.default_rng(0)
    b, latent, k = 4, 3, 5
    x = (rng.random((b, 2, 2, 1)) > 0.5).astype(np.float32)
    mean, logvar = rng.normal(size=(b, latent)).astype(np.float32), rng.normal(size=(b, latent)).astype(np.float32)
    z, logits = rng.normal(size=(b, latent)).astype(np.float32), rng.normal(size=(b, 2, 2, 1)).astype(np.float32)
    log_pz = rng.normal(size=(b, )).astype(np.float32) - 5.0
    x, mean, logvar, z, logits, log_pz = (tf.constant(v) for v in (x, mean, logvar, z, logits, log_pz))
    keys = ("x", "x_logit", "mean", "logvar", "z", "log_pz")
    recon = np_bernoulli(x.numpy(), logits.numpy())
    x_np, mean_np, logvar_np, z_np, log_pz_np = (v.numpy() for v in (x, mean, logvar, z, log_pz))
    mc = CVAELoss(inputs=keys, average_loss=False).forward([x, logits, mean, logvar, z, log_pz], {"mode": "train"})
    np.testing.assert_allclose(mc.numpy(), -(recon + log_pz_np - np_log_normal(z_np, mean_np, logvar_np)), rtol=1e-5)
    analytic = AnalyticKLLoss(inputs=keys, average_loss=False).forward([x, logits, mean, logvar, z, log_pz], {})
    neg_entropy = -0.5 * np.sum(1 + math.log(2 * math.pi) + logvar_np, axis=-1)
    np.testing.assert_allclose(analytic.numpy(), -(recon - (neg_entropy - log_pz_np)), rtol=1e-5)
    # IWAE: k samples per image (sample-major), each with its own log p(z).
    zk = rng.normal(size=(k * b, latent)).astype(np.float32)
    logits_k = rng.normal(size=(k * b, 2, 2, 1)).astype(np.float32)
    log_pz_k = rng.normal(size=(k * b, )).astype(np.float32) - 5.0
    iwae = IWAELoss(inputs=keys, k=k, average_loss=False).forward(
        [x, tf.constant(logits_k), mean, logvar, tf.constant(zk), tf.constant(log_pz_k)], {"mode": "train"})
    log_w = (np_bernoulli(np.tile(x_np, (k, 1, 1, 1)), logits_k) + log_pz_k
             - np_log_normal(zk, np.tile(mean_np, (k, 1)), np.tile(logvar_np, (k, 1)))).reshape(k, b)
    top = log_w.max(axis=0)
    np.testing.assert_allclose(iwae.numpy(), -(top + np.log(np.mean(np.exp(log_w - top), axis=0))), rtol=1e-5)


def _vae_with_a_mixture_prior():
    encoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, 2, 1)), tf.keras.layers.Flatten(),
                                   tf.keras.layers.Dense(4)])
    decoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, )), tf.keras.layers.Dense(4),
                                   tf.keras.layers.Reshape((2, 2, 1))])
    model = build_mixture_prior(3, 2)
    rng = np.random.default_rng(1)
    means, logvars = rng.normal(scale=2.0, size=(3, 2)), rng.normal(scale=0.3, size=(3, 2))
    model.get_layer("means").set_weights([means.reshape(1, -1)])
    model.get_layer("logvars").set_weights([logvars.reshape(1, -1)])
    vae = CVAE(encoder, decoder, binarize_threshold=0.5, prior=MixturePrior(model, 3))
    return vae, means, logvars


def test_the_bounds_of_evaluate_use_the_run_prior():
    vae, means, logvars = _vae_with_a_mixture_prior()
    rng = np.random.default_rng(2)
    x = (rng.random((5, 2, 2, 1)) > 0.5).astype(np.float32)
    eps = rng.normal(size=(6, 5, 2)).astype(np.float32)
    evaluator = _Evaluator(vae)  # (held: its compiled methods keep only a weak reference to it)
    log_w = evaluator.log_weights(tf.constant(x), tf.constant(eps)).numpy()
    out = vae.encoder(x).numpy()
    mean, logvar = out[:, :2], out[:, 2:]
    z = mean[None] + np.exp(0.5 * logvar[None]) * eps  # [K, B, L]
    logits = vae.decoder(z.reshape(-1, 2).astype(np.float32)).numpy()
    expected = (np_bernoulli(np.tile(x, (6, 1, 1, 1)), logits).reshape(6, 5) + np_mixture(z, means, logvars)
                - np_log_normal(z, mean[None], logvar[None]))
    np.testing.assert_allclose(log_w, expected, rtol=1e-4, atol=1e-4)
    recon, kl_mc, kl, _ = evaluator.elbo_terms(tf.constant(x), tf.constant(eps[0]))
    np.testing.assert_allclose(kl_mc.numpy(), np_log_normal(z[0], mean, logvar) - np_mixture(z[0], means, logvars),
                               rtol=1e-4, atol=1e-4)
    neg_entropy = -0.5 * np.sum(1 + math.log(2 * math.pi) + logvar, axis=-1)
    np.testing.assert_allclose(kl.numpy(), neg_entropy - np_mixture(z[0], means, logvars), rtol=1e-4, atol=1e-4)


def test_generate_decodes_draws_from_the_learned_prior():
    vae, means, logvars = _vae_with_a_mixture_prior()
    rng = np.random.default_rng(7)  # the documented order: eps [n, L] first, then u [n]
    eps, u = rng.standard_normal((200, 2)), rng.random(200)
    component = np.minimum((u * 3).astype(int), 2)
    z = means[component] + np.exp(0.5 * logvars[component]) * eps
    np.testing.assert_allclose(vae.generate(200, seed=7), vae.decode(z.astype(np.float32)), rtol=1e-4, atol=1e-5)
    assert len(set(component)) == 3


@pytest.mark.slow
def test_a_run_with_the_vamp_prior_saves_and_reloads_its_pseudo_inputs(small_mnist, tmp_path):
    est = get_estimator(epochs=1, batch_size=50, latent_dim=2, model="mlp", widths=(32, ), prior="vamp",
                        prior_components=6, save_dir=str(tmp_path), data=small_mnist, log_steps=0, seed=0)
    trained = next(m for m in est.network.models if m.model_name == "prior")
    before = trained.get_weights()[0].copy()
    est.fit(summary="vamp")
    assert os.path.isfile(tmp_path / "prior_best_loss.h5")
    vae = CVAE.load(str(tmp_path))
    assert isinstance(vae.prior, VampPrior) and vae.prior.encoder is vae.encoder
    np.testing.assert_array_equal(vae.prior.model.get_weights()[0], trained.get_weights()[0])
    assert not np.array_equal(trained.get_weights()[0], before)  # the pseudo-inputs were trained
    z = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    np.testing.assert_allclose(vae.prior.log_prob(z).numpy(), [float(v) for v in _np_vamp(vae, z)], rtol=1e-4)


def _np_vamp(vae, z):
    out = vae.encoder(vae.prior.pseudo_inputs()).numpy()
    return np_mixture(z, out[:, :2], np.clip(out[:, 2:], -30, 20))


def test_the_sample_grids_draw_from_the_learned_prior(tmp_path):
    from pipeline_vae.traces import SampleGrid
    vae, means, logvars = _vae_with_a_mixture_prior()
    grid = SampleGrid(vae.decoder, str(tmp_path), n=9, seed=3, prior=vae.prior)
    rng = np.random.default_rng(3)  # the fixed noise: eps [n, L], then u [n]
    eps, u = rng.standard_normal((9, 2)), rng.random(9).astype(np.float32)
    component = np.minimum((u * 3).astype(int), 2)
    np.testing.assert_allclose(grid.latents().numpy(), means[component] + np.exp(0.5 * logvars[component]) * eps,
                               rtol=1e-5, atol=1e-5)
    plain = SampleGrid(vae.decoder, str(tmp_path), n=9, seed=3)
    np.testing.assert_allclose(plain.latents().numpy(), eps, rtol=1e-6)


def test_a_partial_iw_bound_is_not_resumed_under_other_prior_weights(tmp_path, capsys):
    """The IW bound's partial file is tied to the learned prior's weights too: with the same encoder and decoder but
    another prior, an interrupted evaluation starts over instead of mixing two models' numbers."""
    from pipeline_vae.metrics import iw_bound
    from tests.pipeline_vae.test_metrics import _StopAfter
    vae, _, _ = _vae_with_a_mixture_prior()
    x = (np.random.default_rng(3).random((20, 2, 2, 1)) > 0.5).astype(np.float32)
    partial = str(tmp_path / "partial.npz")
    with pytest.raises(KeyboardInterrupt):
        iw_bound(vae, x, 7, seed=3, max_decodes=35, progress=_StopAfter(3), resume_file=partial, save_every=0)
    means = vae.prior.model.get_layer("means")
    means.set_weights([means.get_weights()[0] + 1.0])
    moved = iw_bound(vae, x, 7, seed=3, max_decodes=35, resume_file=partial)
    assert "another evaluation" in capsys.readouterr().err
    np.testing.assert_array_equal(moved, iw_bound(vae, x, 7, seed=3, max_decodes=35))
