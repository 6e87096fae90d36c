import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae import build_decoder, build_encoder


@pytest.mark.parametrize("latent_dim", [2, 50])
def test_shapes(latent_dim):
    encoder, decoder = build_encoder(latent_dim), build_decoder(latent_dim)
    assert encoder(tf.zeros([3, 28, 28, 1])).shape == (3, 2 * latent_dim)
    assert decoder(tf.zeros([3, latent_dim])).shape == (3, 28, 28, 1)


def test_architecture_is_the_seeds():
    enc = [(type(layer).__name__, getattr(layer, "filters", getattr(layer, "units", None))) for layer in
           build_encoder(2).layers]
    dec = [(type(layer).__name__, getattr(layer, "filters", getattr(layer, "units", None))) for layer in
           build_decoder(2).layers]
    assert enc == [("Conv2D", 32), ("Conv2D", 64), ("Flatten", None), ("Dense", 4)]
    assert dec == [("Dense", 7 * 7 * 32), ("Reshape", None), ("Conv2DTranspose", 64), ("Conv2DTranspose", 32),
                   ("Conv2DTranspose", 1)]
    assert build_decoder(2).layers[-1].activation.__name__ == "linear"  # logits, not probabilities


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2", True])
def test_latent_dim_is_checked(bad):
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        build_encoder(bad)


def test_mlp_pair_is_the_keras_examples_and_takes_widths():
    from pipeline_vae.models import MODELS
    encoder, decoder = MODELS["mlp"].build(latent_dim=3)
    assert [layer.units for layer in encoder.layers if hasattr(layer, "units")] == [512, 256, 6]
    assert [layer.units for layer in decoder.layers if hasattr(layer, "units")] == [256, 512, 784]
    assert encoder(tf.zeros([2, 28, 28, 1])).shape == (2, 6) and decoder(tf.zeros([2, 3])).shape == (2, 28, 28, 1)
    assert decoder.layers[-2].activation.__name__ == "linear"  # logits
    encoder, decoder = MODELS["mlp"].build(latent_dim=2, widths=[64])
    assert [layer.units for layer in encoder.layers if hasattr(layer, "units")] == [64, 4]
    assert [layer.units for layer in decoder.layers if hasattr(layer, "units")] == [64, 784]


def test_the_papers_mlp_is_784_200_200_50_with_tanh_units():
    """Burda et al. 2016, Appendix C: two deterministic layers of 200 tanh units each way, 50 latent units; the
    encoder outputs 100 numbers (mean and log-variance), the decoder one logit per pixel."""
    from pipeline_vae.models import MODELS
    encoder, decoder = MODELS["mlp_tanh"].build(latent_dim=50)
    dense = [(layer.units, layer.activation.__name__) for layer in encoder.layers if hasattr(layer, "units")]
    assert dense == [(200, "tanh"), (200, "tanh"), (100, "linear")]
    dense = [(layer.units, layer.activation.__name__) for layer in decoder.layers if hasattr(layer, "units")]
    assert dense == [(200, "tanh"), (200, "tanh"), (784, "linear")]
    x = tf.random.uniform([3, 28, 28, 1])
    # The encoder's output by hand: tanh(tanh(x W1 + b1) W2 + b2) W3 + b3.
    w = [v.numpy() for v in encoder.weights]
    h = np.tanh(np.tanh(x.numpy().reshape(3, -1) @ w[0] + w[1]) @ w[2] + w[3])
    np.testing.assert_allclose(encoder(x).numpy(), h @ w[4] + w[5], rtol=1e-4, atol=1e-5)


def test_conv_widths_are_parameters():
    from pipeline_vae.models import MODELS
    encoder, decoder = MODELS["conv"].build(latent_dim=2, widths=(8, 16))
    assert [layer.filters for layer in encoder.layers if hasattr(layer, "filters")] == [8, 16]
    assert decoder.layers[0].units == 7 * 7 * 8
    assert [layer.filters for layer in decoder.layers if hasattr(layer, "filters")] == [16, 8, 1]
    assert decoder(tf.zeros([1, 2])).shape == (1, 28, 28, 1)


@pytest.mark.parametrize("family, widths", [("conv", []), ("conv", [32, 0]), ("mlp", []), ("mlp", [0]),
                                            ("mlp", "512"), ("mlp", [2.5])])
def test_bad_widths_are_clear_errors(family, widths):
    from pipeline_vae.models import MODELS
    with pytest.raises(ValueError, match="widths must be (None or )?a list of"):
        MODELS[family].build(latent_dim=2, widths=widths)


@pytest.mark.parametrize("family", ["conv", "mlp"])
@pytest.mark.parametrize("image_shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (13, 17, 3), (30, 64, 2)])
def test_any_image_shape_round_trips_exactly(family, image_shape):
    """The decoder's output is exactly H x W, with one channel per image channel (or `out_channels`)."""
    from pipeline_vae.models import MODELS
    encoder, decoder = MODELS[family].build(latent_dim=3, image_shape=image_shape)
    assert encoder(tf.zeros([2, *image_shape])).shape == (2, 6)
    assert decoder(tf.zeros([2, 3])).shape == (2, *image_shape)
    _, two_per_value = MODELS[family].build(latent_dim=3, image_shape=image_shape, out_channels=2 * image_shape[2])
    assert two_per_value(tf.zeros([1, 3])).shape == (1, image_shape[0], image_shape[1], 2 * image_shape[2])


def test_conv_depth_follows_the_widths_and_is_checked_against_the_image():
    from pipeline_vae.models import MODELS
    encoder, decoder = MODELS["conv"].build(latent_dim=2, widths=(8, 16, 32), image_shape=(32, 32, 3))
    assert [layer.filters for layer in encoder.layers if hasattr(layer, "filters")] == [8, 16, 32]
    assert decoder.layers[0].units == 4 * 4 * 8  # ceil(32 / 2^3) = 4
    assert [layer.filters for layer in decoder.layers if hasattr(layer, "filters")] == [32, 16, 8, 3]
    # 8 -> 3 -> 1: two stride-2 convolutions fit an 8x8 image, three do not.
    MODELS["conv"].check(2, (8, 16), image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=r"image height 8 is too small for 3 stride-2 convolutions"):
        MODELS["conv"].check(2, (8, 16, 32), image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=r"image width 5 is too small for 2 stride-2 convolutions"):
        MODELS["conv"].build(2, image_shape=(28, 5, 1))


@pytest.mark.parametrize("bad", [(28, 28), (28, 28, 0), [28, 28, 1.0], "28x28", (28, 28, True)])
def test_image_shape_is_checked(bad):
    from pipeline_vae.models import MODELS
    with pytest.raises(ValueError, match="image_shape must be three positive integers"):
        MODELS["mlp"].build(2, image_shape=bad)
