"""The convolutional encoder and decoder of the TensorFlow / FastEstimator CVAE tutorials."""
from typing import Tuple

import tensorflow as tf

IMAGE_SHAPE: Tuple[int, int, int] = (28, 28, 1)


def _check_latent_dim(latent_dim: int) -> int:
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    return latent_dim


def build_encoder(latent_dim: int = 2) -> tf.keras.Model:
    """Conv 32 s2 -> Conv 64 s2 -> Flatten -> Dense 2*latent_dim (mean and log-variance, concatenated).

    Args:
        latent_dim: Size of z.

    Returns:
        A Keras Sequential taking [B, 28, 28, 1] floats and returning [B, 2 * latent_dim].

    Raises:
        ValueError: If `latent_dim` is not a positive integer.
    """
    latent_dim = _check_latent_dim(latent_dim)
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=IMAGE_SHAPE),
        tf.keras.layers.Conv2D(32, kernel_size=3, strides=(2, 2), activation="relu"),
        tf.keras.layers.Conv2D(64, kernel_size=3, strides=(2, 2), activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(2 * latent_dim),
    ], name="encoder")


def build_decoder(latent_dim: int = 2) -> tf.keras.Model:
    """Dense 7*7*32 -> Reshape -> ConvT 64 s2 -> ConvT 32 s2 -> ConvT 1 s1, returning logits (no sigmoid).

    Args:
        latent_dim: Size of z.

    Returns:
        A Keras Sequential taking [B, latent_dim] and returning Bernoulli logits [B, 28, 28, 1].

    Raises:
        ValueError: If `latent_dim` is not a positive integer.
    """
    latent_dim = _check_latent_dim(latent_dim)
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(latent_dim, )),
        tf.keras.layers.Dense(units=7 * 7 * 32, activation="relu"),
        tf.keras.layers.Reshape(target_shape=(7, 7, 32)),
        tf.keras.layers.Conv2DTranspose(64, kernel_size=3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2DTranspose(32, kernel_size=3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2DTranspose(1, kernel_size=3, strides=1, padding="same"),
    ], name="decoder")
