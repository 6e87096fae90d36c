"""The flow slot in a run: the graph feeds the flow's sample to the decoder and its log q(z|x) to the loss, and the
bounds of `evaluate` use it (checked against NumPy written here)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from ops import AnalyticKLLoss, CVAELoss, PlanarFlow
from pipeline_vae import get_estimator
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import _Evaluator
from pipeline_vae.models import build_planar_flow
from pipeline_vae.slots import build_graph
from tests.numpy_reference import np_bernoulli, np_log_normal


def test_the_flow_slot_feeds_the_decoder_and_the_loss():
    graph = build_graph(latent_dim=3, model="mlp", widths=(16, ), flow="planar", flow_steps=2, prior="mixture",
                        prior_components=2)
    slots = [(name, op) for name, op in graph.named_ops if name != "update"]
    names = [name for name, _ in slots]
    assert names.index("reparameterize") < names.index("flow") < names.index("decode")
    flow = dict(slots)["flow"]
    assert isinstance(flow, PlanarFlow) and flow.inputs == ["mean", "logvar", "z"] and flow.outputs == ["z", "log_qz"]
    assert dict(slots)["loss"].inputs == ["x", "x_logit", "mean", "logvar", "z", "log_qz", "log_pz"]
    assert dict(slots)["loss"].density_roles == ["log_qz", "log_pz"]
    assert [m.model_name for m in graph.models] == ["encoder", "flow", "decoder", "prior"]


def test_the_losses_use_the_flow_density():
    rng = np.random.default_rng(0)
    x = tf.constant((rng.random((4, 2, 2, 1)) > 0.5).astype(np.float32))
    mean, logvar, z = (tf.constant(rng.normal(size=(4, 3)).astype(np.float32)) for _ in range(3))
    logits = tf.constant(rng.normal(size=(4, 2, 2, 1)).astype(np.float32))
    log_qz = tf.constant(rng.normal(size=4).astype(np.float32))
    keys = ("x", "x_logit", "mean", "logvar", "z")
    recon = np_bernoulli(x.numpy(), logits.numpy())
    log_pz = np_log_normal(z.numpy(), 0.0, 0.0)
    for cls in (CVAELoss, AnalyticKLLoss):  # no closed form with a flow: both are the one-sample estimate
        op = cls(inputs=keys, average_loss=False)
        op.bind_posterior("log_qz")
        out = op.forward([x, logits, mean, logvar, z, log_qz], {"mode": "train"})
        np.testing.assert_allclose(out.numpy(), -(recon + log_pz - log_qz.numpy()), rtol=1e-5, atol=1e-5)


def test_the_bounds_of_evaluate_use_the_flow():
    encoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, 2, 1)), tf.keras.layers.Flatten(),
                                   tf.keras.layers.Dense(4)])
    decoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, )), tf.keras.layers.Dense(4),
                                   tf.keras.layers.Reshape((2, 2, 1))])
    model = build_planar_flow(2, 2)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=(1, 4)), rng.normal(size=(1, 4)), rng.normal(size=(1, 2))])
    flow = PlanarFlow(model, 2)
    vae = CVAE(encoder, decoder, binarize_threshold=0.5, flow=flow)
    x = (rng.random((5, 2, 2, 1)) > 0.5).astype(np.float32)
    eps = rng.normal(size=(3, 5, 2)).astype(np.float32)
    evaluator = _Evaluator(vae)
    log_w = evaluator.log_weights(tf.constant(x), tf.constant(eps)).numpy()
    out = encoder(x).numpy()
    mean, logvar = np.tile(out[:, :2], (3, 1)), np.tile(out[:, 2:], (3, 1))
    z0 = mean + np.exp(0.5 * logvar) * eps.reshape(15, 2)
    z_k, log_det = (v.numpy() for v in flow.transform(tf.constant(z0.astype(np.float32))))
    expected = (np_bernoulli(np.tile(x, (3, 1, 1, 1)), decoder(z_k).numpy()) + np_log_normal(z_k, 0.0, 0.0)
                - (np_log_normal(z0, mean, logvar) - log_det)).reshape(3, 5)
    np.testing.assert_allclose(log_w, expected, rtol=1e-4, atol=1e-4)
    # Reconstructions decode the mean of q_0 pushed through the flow.
    np.testing.assert_allclose(vae.reconstruct(x), vae.decode(flow.transform(tf.constant(out[:, :2]))[0].numpy()),
                               rtol=1e-5)
    # ... and so do the points of an interpolation (its ends are the two images' reconstructions).
    path = vae.interpolate(x[:1], x[1:2], steps=3)
    np.testing.assert_allclose(path[[0, 2]], vae.reconstruct(x[:2]), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_run_with_a_planar_flow_saves_and_reloads_it(small_mnist, tmp_path):
    est = get_estimator(epochs=1, batch_size=50, latent_dim=2, model="mlp", widths=(32, ), flow="planar",
                        flow_steps=3, save_dir=str(tmp_path), data=small_mnist, log_steps=0, seed=0)
    trained = next(m for m in est.network.models if m.model_name == "flow")
    before = [w.copy() for w in trained.get_weights()]
    est.fit(summary="flow")
    assert os.path.isfile(tmp_path / "flow_best_loss.h5")
    vae = CVAE.load(str(tmp_path))
    assert isinstance(vae.flow, PlanarFlow) and vae.flow.steps == 3
    for loaded, kept, start in zip(vae.flow.model.get_weights(), trained.get_weights(), before):
        np.testing.assert_array_equal(loaded, kept)
    assert any(not np.array_equal(kept, start) for kept, start in zip(trained.get_weights(), before))  # trained
