import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae.inference import CVAE, to_unit_images
from pipeline_vae.models import build_decoder, build_encoder


def bce(target, probs):
    p = np.clip(probs, 1e-6, 1 - 1e-6)
    return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))


@pytest.fixture(scope="module")
def vae(trained_dir):
    return CVAE.load(trained_dir, batch_size=64)


def test_latent_size_is_read_from_the_models(vae):
    assert vae.latent_dim == 2 and vae.binarize


def test_reconstructing_a_digit_beats_reconstructing_noise(vae, mnist):
    digits = mnist.x_train[:200]
    noise = np.random.default_rng(0).integers(0, 256, size=(200, 28, 28)).astype(np.uint8)
    digit_err = bce(vae.prepare(digits)[..., 0], vae.reconstruct(digits))
    noise_err = bce(vae.prepare(noise)[..., 0], vae.reconstruct(noise))
    assert digit_err < 0.3 and noise_err > 3 * digit_err


def test_shapes_and_forms_accepted(vae, mnist):
    one = mnist.x_test[0]
    forms = [one, one[..., None], mnist.x_test[:3], mnist.x_test[:3, ..., None], mnist.x_test[:3] / 255.0,
             (mnist.x_test[:3] / 255.0).astype(np.float32)]
    means = [vae.encode(form)[0] for form in forms]
    assert [m.shape for m in means] == [(1, 2), (1, 2), (3, 2), (3, 2), (3, 2), (3, 2)]
    np.testing.assert_allclose(means[2], means[4], atol=1e-6)  # uint8 and float give the same code
    np.testing.assert_allclose(means[0], means[2][:1], atol=1e-5)  # batch 1 vs 3: float32 kernels differ by ~1e-6


def test_batching_does_not_change_results(trained_dir, mnist):
    small, large = CVAE.load(trained_dir, batch_size=7), CVAE.load(trained_dir, batch_size=1000)
    np.testing.assert_allclose(small.encode(mnist.x_test[:50])[0], large.encode(mnist.x_test[:50])[0], atol=1e-5)


def test_generate_decode_interpolate(vae, mnist):
    images = vae.generate(5, seed=3)
    assert images.shape == (5, 28, 28) and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, vae.generate(5, seed=3))  # seeded
    logits = vae.decode(np.zeros((2, 2)), probs=False)
    np.testing.assert_allclose(tf.sigmoid(logits).numpy(), vae.decode(np.zeros((2, 2))), atol=1e-6)
    path = vae.interpolate(mnist.x_test[0], mnist.x_test[1], steps=6)
    assert path.shape == (6, 28, 28)
    np.testing.assert_allclose(path[0], vae.reconstruct(mnist.x_test[0])[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], vae.reconstruct(mnist.x_test[1])[0], atol=1e-5)


def test_sample_latent_moments(vae):
    z = vae.sample_latent(np.full((20000, 2), 1.5, np.float32), np.full((20000, 2), np.log(0.25), np.float32), seed=0)
    np.testing.assert_allclose(z.mean(0), 1.5, atol=0.02)
    np.testing.assert_allclose(z.std(0), 0.5, atol=0.02)


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 32, 32), np.uint8), r"images: shape \(2, 32, 32\) not supported; expected uint8 images"),
    (np.zeros((2, 28, 28, 3), np.uint8), r"images: shape \(2, 28, 28, 3\) not supported"),
    (np.zeros((0, 28, 28), np.uint8), "images: is empty"),
    (np.full((1, 28, 28), 2.0), r"images: float values must be in 0..1, got 2..2"),
    (np.full((1, 28, 28), np.nan), "images: contains NaN or Inf"),
    (np.zeros((1, 28, 28), np.int64), "images: dtype int64 not supported"),
    ([["a"]], "images: dtype <U1 not supported"),
])
def test_bad_images_are_one_clear_error(images, message):
    with pytest.raises(ValueError, match=message):
        to_unit_images(images)


@pytest.mark.parametrize("z, message", [(np.zeros((2, 3)), r"z: expected shape \[N, 2\]"),
                                        (np.array([[np.nan, 0.0]]), "z: contains NaN or Inf")])
def test_bad_latents(vae, z, message):
    with pytest.raises(ValueError, match=message):
        vae.decode(z)


def test_mismatched_pair_is_a_clear_error():
    with pytest.raises(ValueError, match="encoder and decoder do not match: the encoder's latent size is 2, the "
                       "decoder's is 50"):
        CVAE(build_encoder(2), build_decoder(50))


def test_missing_truncated_and_weights_only_files(trained_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="save_dir .* does not exist"):
        CVAE.load(str(tmp_path / "nowhere"))
    run = tmp_path / "run"
    shutil.copytree(trained_dir, run)
    os.remove(run / "decoder_best_loss.h5")
    with pytest.raises(FileNotFoundError, match="decoder model .*decoder_best_loss.h5 does not exist"):
        CVAE.load(str(run))
    shutil.copy(os.path.join(trained_dir, "decoder_best_loss.h5"), run)
    data = (run / "encoder_best_loss.h5").read_bytes()
    (run / "encoder_best_loss.h5").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="encoder model .*encoder_best_loss.h5 is not a readable Keras .h5 model"):
        CVAE.load(str(run))
    build_encoder(2).save_weights(str(run / "encoder_best_loss.h5"))  # what FE's own BestModelSaver writes
    with pytest.raises(ValueError, match=r"encoder model .*encoder_best_loss.h5 is not a readable Keras .h5 model "
                       r"\(it holds no architecture: weights only\?\); restore the file, or retrain"):
        CVAE.load(str(run))


def _unstamp(run) -> None:
    """Make `run` a folder from before models recorded their run's identity (so its config can be edited)."""
    import h5py
    from pipeline_vae.run_config import STAMP_ATTRIBUTE
    for name in ("encoder_best_loss.h5", "decoder_best_loss.h5"):
        with h5py.File(run / name, "a") as file:
            del file.attrs[STAMP_ATTRIBUTE]


def test_a_run_without_binarization_is_not_binarized(trained_dir, tmp_path):
    run = tmp_path / "grey"
    shutil.copytree(trained_dir, run)
    _unstamp(run)
    config = json.loads((run / "cvae_config.json").read_text())
    config["binarize_threshold"] = None
    (run / "cvae_config.json").write_text(json.dumps(config))
    grey = np.full((1, 28, 28), 0.3, np.float32)
    assert float(CVAE.load(str(run)).prepare(grey).max()) == pytest.approx(0.3)
    assert float(CVAE.load(trained_dir).prepare(grey).max()) == 0.0


def test_a_run_folder_from_before_run_configs_loads_as_mnist(trained_dir, tmp_path):
    """Version-less configs (the MNIST-only format) are read by their slots: binarized unless the slot was dropped."""
    run = tmp_path / "old"
    shutil.copytree(trained_dir, run)
    _unstamp(run)  # such folders predate the stamps
    old = {"latent_dim": 2, "image_shape": [28, 28], "batch_size": 100, "learning_rate": 0.001, "model": "conv",
           "widths": None, "slots": {"rescale": ["Rescale"], "binarize": ["Binarize"]}, "binarize_threshold": 0.25}
    (run / "cvae_config.json").write_text(json.dumps(old))
    grey = np.full((1, 28, 28), 0.3, np.float32)
    vae = CVAE.load(str(run))
    assert vae.likelihood.name == "bernoulli" and float(vae.prepare(grey).max()) == 1.0  # cut at 0.25
    del old["slots"]["binarize"]
    (run / "cvae_config.json").write_text(json.dumps(old))
    assert float(CVAE.load(str(run)).prepare(grey).max()) == pytest.approx(0.3)


def test_reconstruct_with_a_sample_decodes_mean_plus_scaled_noise(vae, mnist):
    """sample=True: z = mean + exp(logvar / 2) * eps with eps from NumPy's generator seeded as documented; the
    expected Bernoulli means are computed here with the Keras models."""
    images = mnist.x_test[:5]
    out = vae.encoder((images >= 128).astype(np.float32)[..., None]).numpy().astype(np.float64)
    mean, logvar = out[:, :2], out[:, 2:]
    eps = np.random.default_rng(11).standard_normal(mean.shape).astype(np.float32)
    z = (mean + np.exp(0.5 * logvar) * eps).astype(np.float32)
    expected = 1 / (1 + np.exp(-vae.decoder(z).numpy()[..., 0].astype(np.float64)))
    sampled = vae.reconstruct(images, sample=True, seed=11)
    np.testing.assert_allclose(sampled, expected, atol=1e-5)
    assert np.abs(sampled - vae.reconstruct(images)).max() > 0.05  # a sample, not the mean


def test_generate_decodes_draws_from_the_standard_normal_prior():
    """A decoder whose logits are z itself: generate's Bernoulli means, mapped back through the logit, are the prior
    draws; a Kolmogorov-Smirnov test against N(0, 1) (scipy's, independent of the code) accepts each coordinate, and
    rejects the uniform draws a broken prior would give."""
    from scipy import stats
    encoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(1, 2, 1)), tf.keras.layers.Flatten(),
                                   tf.keras.layers.Dense(4)])
    decoder = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2, )),
                                   tf.keras.layers.Dense(2, use_bias=False, kernel_initializer="identity"),
                                   tf.keras.layers.Reshape((1, 2, 1))])
    vae = CVAE(encoder, decoder, "bernoulli", None)
    p = vae.generate(4000, seed=0).astype(np.float64).reshape(4000, 2)
    z = np.log(p) - np.log1p(-p)
    for column in z.T:
        assert stats.kstest(column, "norm").pvalue > 1e-3
        assert stats.kstest(np.random.default_rng(0).uniform(size=4000), "norm").pvalue < 1e-6  # the test has power
    assert abs(np.corrcoef(z.T)[0, 1]) < 0.1  # independent coordinates
