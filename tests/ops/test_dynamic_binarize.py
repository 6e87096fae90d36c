import numpy as np
import pytest
import tensorflow as tf

from ops import Binarize, DynamicBinarize, Rescale


def test_mean_of_draws_matches_the_pixel_intensities(mnist):
    (x, ) = Rescale().forward([tf.constant(mnist.x_test[:2])], state={})
    n = 2000
    batch = tf.tile(x, [n, 1, 1, 1])
    tf.random.set_seed(0)
    (draws, ) = DynamicBinarize().forward([batch], state={"mode": "train"})
    draws = draws.numpy().reshape(n, 2, 28, 28, 1)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    p = x.numpy()
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(draws.mean(0) - p) <= 5 * se + 1e-6)  # pixels at exactly 0 or 1 never flip
    assert np.all(draws[:, p == 0.0] == 0.0) and np.all(draws[:, p == 1.0] == 1.0)


def test_a_fresh_draw_every_call_in_train_mode():
    x = tf.fill([4, 28, 28, 1], 0.5)
    (a, ), (b, ) = (DynamicBinarize().forward([x], state={"mode": "train"}) for _ in range(2))
    assert not np.array_equal(a.numpy(), b.numpy())


def test_eval_mode_thresholds_like_binarize(mnist):
    (x, ) = Rescale().forward([tf.constant(mnist.x_test[:16])], state={})
    (dynamic, ) = DynamicBinarize().forward([x], state={"mode": "eval"})
    (static, ) = Binarize().forward([x], state={"mode": "eval"})
    np.testing.assert_array_equal(dynamic.numpy(), static.numpy())


def test_without_eval_threshold_eval_mode_samples_too():
    x = tf.fill([4, 28, 28, 1], 0.5)
    (out, ) = DynamicBinarize(eval_threshold=None).forward([x], state={"mode": "eval"})
    assert 0.3 < out.numpy().mean() < 0.7


def test_uint8_and_out_of_range_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="must hold float images in 0..1, got uint8"):
        DynamicBinarize().forward([tf.zeros([1, 28, 28], tf.uint8)], state={"mode": "train"})
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be in 0..1"):
        DynamicBinarize().forward([tf.fill([1, 28, 28], 2.0)], state={"mode": "train"})


@pytest.mark.parametrize("threshold", [0, 1, 1.5, "0.5", True])
def test_eval_threshold_must_be_in_open_unit_interval(threshold):
    with pytest.raises(ValueError, match="eval_threshold must be None or a number strictly between 0 and 1"):
        DynamicBinarize(eval_threshold=threshold)
