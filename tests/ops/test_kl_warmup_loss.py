import math

import numpy as np
import pytest
import tensorflow as tf

from ops import KLWarmupLoss

DATA = [tf.ones([1, 2, 2, 1]), tf.zeros([1, 2, 2, 1]), tf.constant([[1.0, 0.0, 0.0]]), tf.zeros([1, 3]),
        tf.zeros([1, 3])]  # -log p(x|z) = 4 log 2, KL = 1/2


def test_weight_rises_linearly_over_the_warmup_epochs():
    op = KLWarmupLoss(warmup_epochs=4, beta=2.0)
    losses = [op.forward(DATA, state={"mode": "train", "epoch": tf.constant(e)}).numpy() for e in range(1, 8)]
    weights = [2.0 * min(1.0, (e - 1) / 4) for e in range(1, 8)]  # 0, .5, 1, 1.5, 2, 2, 2
    np.testing.assert_allclose(losses, [4 * math.log(2.0) + w * 0.5 for w in weights], rtol=1e-6)


def test_one_traced_graph_serves_every_epoch():
    """FE passes the epoch as an int32 tensor; the weight must come from TF math, not a retrace per epoch."""
    op = KLWarmupLoss(warmup_epochs=2)
    fn = tf.function(lambda epoch: op.kl_weight({"mode": "train", "epoch": epoch}))
    weights = [float(fn(tf.constant(e, tf.int32))) for e in (1, 2, 3, 4)]
    assert weights == [0.0, 0.5, 1.0, 1.0]
    assert fn.experimental_get_tracing_count() == 1


def test_eval_mode_reports_the_plain_negative_elbo():
    loss = KLWarmupLoss(warmup_epochs=10).forward(DATA, state={"mode": "eval", "epoch": tf.constant(1)}).numpy()
    np.testing.assert_allclose(loss, 4 * math.log(2.0) + 0.5, rtol=1e-6)


def test_train_mode_without_an_epoch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"needs FE's state\['epoch'\]"):
        KLWarmupLoss().forward(DATA, state={"mode": "train"})


@pytest.mark.parametrize("epochs", [0, -1, 1.5, None, True])
def test_warmup_epochs_must_be_a_positive_integer(epochs):
    with pytest.raises(ValueError, match="warmup_epochs must be a positive integer"):
        KLWarmupLoss(warmup_epochs=epochs)
