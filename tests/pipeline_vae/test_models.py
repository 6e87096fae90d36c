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
