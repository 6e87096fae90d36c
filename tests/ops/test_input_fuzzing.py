"""Property tests (hypothesis) of the ops' input checks: any input either gives a valid result or one clear error
naming the op; never another exception, never a silently wrong value."""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ops import AnalyticKLLoss, Binarize, CVAELoss, DynamicBinarize, ReparameterizeOp, Rescale, SplitOp

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLEAR_ERRORS = (ValueError, tf.errors.InvalidArgumentError)
shapes = hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=5)


def _arrays(dtypes):
    return st.sampled_from(dtypes).flatmap(lambda dtype: hnp.arrays(dtype, shapes))


def _fails_clearly(fn, op_name: str) -> bool:
    try:
        fn()
    except CLEAR_ERRORS as err:
        assert op_name in str(err), str(err)
        return True
    return False


@SETTINGS
@given(_arrays([np.uint8, np.int32, np.int64, np.float32, np.float64, np.bool_]))
def test_rescale(x):
    valid = (x.dtype.kind in "ui" and x.ndim in (3, 4) and (x.ndim == 3 or x.shape[-1] in (1, 3))
             and (x.size == 0 or (x.min() >= 0 and x.max() <= 255)))
    if not valid:
        assert _fails_clearly(lambda: Rescale().forward([tf.constant(x)], state={}), "Rescale")
        return
    (out, ) = Rescale().forward([tf.constant(x)], state={})
    assert out.dtype == tf.float32 and out.shape[-1] == (1 if x.ndim == 3 else x.shape[-1]) and out.shape.rank == 4
    np.testing.assert_allclose(out.numpy().reshape(x.shape), x / 255.0, rtol=1e-6)


@SETTINGS
@given(_arrays([np.float32, np.float64, np.uint8]), st.sampled_from([Binarize, DynamicBinarize]))
def test_binarize_variants(x, op_class):
    op = op_class()
    valid = (x.dtype.kind == "f" and x.ndim in (3, 4) and bool(np.all(np.isfinite(x)))
             and (op_class is Binarize or x.size == 0 or (x.min() >= 0 and x.max() <= 1)))
    if not valid:
        assert _fails_clearly(lambda: op.forward([tf.constant(x)], state={"mode": "train"}), op_class.__name__)
        return
    (out, ) = op.forward([tf.constant(x)], state={"mode": "train"})
    assert out.shape == x.shape and set(np.unique(out.numpy())) <= {0.0, 1.0}


@SETTINGS
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
                  elements=st.floats(-1e4, 1e4, width=32)))
def test_split_and_reparameterize(x):
    if x.ndim != 2 or x.shape[-1] % 2:
        assert _fails_clearly(lambda: SplitOp().forward(tf.constant(x), state={}), "SplitOp")
        return
    mean, logvar = SplitOp().forward(tf.constant(x), state={})
    z = ReparameterizeOp().forward([mean, logvar], state={})
    assert z.shape == mean.shape and np.all(np.isfinite(z.numpy()))  # logvar up to 1e4 is clipped, never inf


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.floats(-1e4, 1e4, width=32), st.floats(-1e4, 1e4, width=32), st.booleans())
def test_losses_are_finite_for_any_finite_input_or_refuse_mismatched_shapes(batch, side, latent, big, logit, mismatch):
    x = tf.ones([batch, side, side, 1])
    x_logit = tf.fill([batch, side + int(mismatch), side, 1], logit)
    mean, logvar = tf.fill([batch, latent], big), tf.fill([batch, latent], big)
    z = tf.fill([batch, latent], big / 2)
    for loss in (CVAELoss(), AnalyticKLLoss()):
        if mismatch:
            assert _fails_clearly(lambda: loss.forward([x, x_logit, mean, logvar, z], state={}), type(loss).__name__)
        else:
            assert np.isfinite(loss.forward([x, x_logit, mean, logvar, z], state={}).numpy())


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_images_are_refused(value):
    x = np.full([1, 2, 2], value, np.float32)
    assert _fails_clearly(lambda: Binarize().forward([tf.constant(x)], state={}), "Binarize")
