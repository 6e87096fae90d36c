"""Property tests (hypothesis) of the inference API's input checks: valid input gives the documented shape and range,
anything else one ValueError naming the argument."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline_vae.inference import CVAE, to_unit_images
from pipeline_vae.models import build_decoder, build_encoder

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
image_shapes = st.one_of(st.sampled_from([(28, 28), (28, 28, 1), (3, 28, 28), (2, 28, 28, 1), (0, 28, 28)]),
                         hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=29))
dtypes = st.sampled_from([np.uint8, np.float32, np.float64, np.int32, np.bool_, np.complex64])


@pytest.fixture(scope="module")
def vae():
    return CVAE(build_encoder(3), build_decoder(3), batch_size=4)


def _expected_ok(x: np.ndarray) -> bool:
    shape_ok = x.shape in ((28, 28), (28, 28, 1)) or (x.ndim == 3 and x.shape[1:] == (28, 28) and x.shape[0] > 0) or (
        x.ndim == 4 and x.shape[1:] == (28, 28, 1) and x.shape[0] > 0)
    if x.dtype == np.uint8:
        return shape_ok
    if x.dtype.kind == "f":
        return shape_ok and bool(np.all(np.isfinite(x))) and x.min() >= 0 and x.max() <= 1
    return False


@SETTINGS
@given(st.data())
def test_images_are_converted_or_refused_with_one_clear_line(data):
    dtype, shape = data.draw(dtypes), data.draw(image_shapes)
    x = data.draw(hnp.arrays(dtype, shape))
    if _expected_ok(x):
        out = to_unit_images(x, name="images")
        assert out.dtype == np.float32 and out.ndim == 4 and out.shape[1:] == (28, 28, 1)
        assert out.shape[0] == (1 if x.shape in ((28, 28), (28, 28, 1)) else x.shape[0])
        assert out.min() >= 0 and out.max() <= 1
    else:
        with pytest.raises(ValueError) as info:
            to_unit_images(x, name="images")
        assert str(info.value).startswith("images: ") and "\n" not in str(info.value)


@SETTINGS
@given(hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
                  hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)))
def test_latents_are_decoded_or_refused_with_one_clear_line(vae, z):
    wide = z.astype(np.float64)
    ok = (z.dtype.kind in "fiu" and (z.shape == (3, ) or (z.ndim == 2 and z.shape[1] == 3 and z.shape[0] > 0))
          and bool(np.all(np.isfinite(wide))) and bool(np.all(np.abs(wide) <= np.finfo(np.float32).max)))
    if ok:
        out = vae.decode(z)
        assert out.shape == ((1 if z.ndim == 1 else z.shape[0]), 28, 28)
        if np.all(np.abs(wide) < 1e6):  # beyond that the untrained decoder's arithmetic itself overflows
            assert out.min() >= 0 and out.max() <= 1
    else:
        with pytest.raises(ValueError) as info:
            vae.decode(z)
        assert str(info.value).startswith("z: ") and "\n" not in str(info.value)


@SETTINGS
@given(hnp.arrays(np.float32, (2, 3), elements=st.floats(-1e6, 1e6, width=32)))
def test_sampling_never_overflows_whatever_the_logvar(vae, logvar):
    z = vae.sample_latent(np.zeros((2, 3), np.float32), logvar, seed=0)
    assert np.all(np.isfinite(z))
