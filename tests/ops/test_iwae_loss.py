import math

import numpy as np
import pytest
import tensorflow as tf

from ops import CVAELoss, IWAELoss, MultiSampleReparameterizeOp


def _random_data(k, batch=6, latent=3, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant((rng.random((batch, 4, 4, 1)) > 0.5).astype(np.float32))
    mean = tf.constant(rng.normal(size=(batch, latent)).astype(np.float32))
    logvar = tf.constant(rng.normal(-1, 0.3, size=(batch, latent)).astype(np.float32))
    z = MultiSampleReparameterizeOp(samples=k).forward([mean, logvar], state={})
    logits = tf.tile(tf.reduce_sum(z, axis=1)[:, None, None, None], [1, 4, 4, 1])  # depends on z
    return [x, logits, mean, logvar, z]


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_k_one_equals_the_one_sample_elbo_loss(mode):
    tf.random.set_seed(0)
    data = _random_data(k=1)
    np.testing.assert_allclose(IWAELoss(k=1, average_loss=False).forward(data, state={"mode": mode}).numpy(),
                               CVAELoss(average_loss=False).forward(data, state={"mode": mode}).numpy(), rtol=1e-5)


def test_hand_computed_bound_for_two_samples():
    """x: 4 pixels, logits 0 -> log p(x|z) = -4 log 2 for any z; mean 0, logvar 0 -> q = p, so every log w_j is
    -4 log 2 and the bound is exactly that; shift q to mean 1 and the weights follow the Gaussian densities."""
    x, logits = tf.ones([1, 2, 2, 1]), tf.zeros([2, 2, 2, 1])
    z = tf.constant([[0.5], [-1.0]])
    loss = IWAELoss(k=2).forward([x, logits, tf.zeros([1, 1]), tf.zeros([1, 1]), z], state={"mode": "train"})
    np.testing.assert_allclose(loss.numpy(), 4 * math.log(2.0), rtol=1e-6)
    mean = tf.ones([1, 1])
    log_w = -4 * math.log(2.0) + np.array([-0.5 * 0.25 + 0.5 * 0.25, -0.5 * 1.0 + 0.5 * 4.0])  # log p(z) - log q(z)
    expected_train = -(np.log(np.mean(np.exp(log_w))))
    train = IWAELoss(k=2).forward([x, logits, mean, tf.zeros([1, 1]), z], state={"mode": "train"}).numpy()
    evaluation = IWAELoss(k=2).forward([x, logits, mean, tf.zeros([1, 1]), z], state={"mode": "eval"}).numpy()
    np.testing.assert_allclose(train, expected_train, rtol=1e-6)
    np.testing.assert_allclose(evaluation, -log_w.mean(), rtol=1e-6)


def _np_log_normal(z, mean, logvar):
    return np.sum(-0.5 * (np.log(2 * np.pi) + logvar + (z - mean)**2 / np.exp(logvar)), axis=-1)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batch_of_four_distinct_images_against_numpy(mode):
    """Four different images, posteriors and decoder outputs; each of the k*B rows of z and x_logit belongs to image
    row % B (sample-major). The reference pairs them explicitly, so tiling x, mean or logvar example-major, or
    reshaping the weights [B, k], moves every image's bound by nats."""
    k, batch, latent = 3, 4, 2
    rng = np.random.default_rng(5)
    x = (rng.random((batch, 3, 3, 1)) > 0.5).astype(np.float64)
    x[np.arange(batch), 0, 0, 0] = [0, 1, 0, 1]  # (distinct even if the draw repeated one)
    x[np.arange(batch), 0, 1, 0] = [0, 0, 1, 1]
    mean = rng.normal(0, 1.5, (batch, latent))
    logvar = rng.normal(-0.5, 0.8, (batch, latent))
    z = rng.normal(0, 1.5, (k * batch, latent))  # any z: row j*B + b is sample j of image b
    logits = np.tanh(z @ rng.normal(size=(latent, 9))).reshape(k * batch, 3, 3, 1) * 4
    log_w = np.empty((k, batch))
    for j in range(k):
        for b in range(batch):
            r = j * batch + b
            bern = np.sum(x[b] * -np.logaddexp(0, -logits[r]) + (1 - x[b]) * -np.logaddexp(0, logits[r]))
            log_w[j, b] = bern + _np_log_normal(z[r], 0.0, 0.0) - _np_log_normal(z[r], mean[b], logvar[b])
    if mode == "train":
        expected = -np.array([np.log(np.mean(np.exp(log_w[:, b] - log_w[:, b].max()))) + log_w[:, b].max()
                              for b in range(batch)])
    else:
        expected = -log_w.mean(axis=0)
    data = [tf.constant(t, tf.float32) for t in (x, logits, mean, logvar, z)]
    got = IWAELoss(k=k, average_loss=False).forward(data, state={"mode": mode}).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)
    assert np.ptp(expected) > 1.0  # the images' bounds differ, so a permutation cannot pass
    mean_loss = IWAELoss(k=k).forward(data, state={"mode": mode}).numpy()
    np.testing.assert_allclose(mean_loss, expected.mean(), atol=1e-4, rtol=1e-5)


def test_the_bound_is_at_least_the_elbo():
    """Jensen: log mean w >= mean log w, per image; so the train loss (bound) <= the eval loss (ELBO)."""
    tf.random.set_seed(1)
    data = _random_data(k=8)
    op = IWAELoss(k=8, average_loss=False)
    bound = -op.forward(data, state={"mode": "train"}).numpy()
    elbo = -op.forward(data, state={"mode": "eval"}).numpy()
    assert bound.shape == (6, ) and np.all(bound >= elbo - 1e-5) and np.any(bound > elbo + 1e-3)


def test_too_few_samples_upstream_is_a_clear_error():
    data = _random_data(k=1)
    with pytest.raises(ValueError, match=r"MultiSampleReparameterizeOp\(samples=3\) .*got 6 and 6 rows for a batch of 6"):
        IWAELoss(k=3).forward(data, state={"mode": "train"})
    # With the batch size unknown until run time (as in a traced FE graph), the same message comes from TF.
    fn = tf.function(lambda *d: IWAELoss(k=3).forward(list(d), state={"mode": "train"}),
                     input_signature=[tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in data])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"MultiSampleReparameterizeOp\(samples=3\)"):
        fn(*data)


@pytest.mark.parametrize("k", [0, -2, 2.0, None, True])
def test_k_must_be_a_positive_integer(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        IWAELoss(k=k)
