"""The encoder/decoder pairs: the convolutional one of the TensorFlow / FastEstimator CVAE tutorials (the default)
and the MLP of the Keras VAE examples, with widths as parameters.

    encoder, decoder = MODELS["mlp"].build(latent_dim=2, widths=(512, 256))
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import tensorflow as tf

IMAGE_SHAPE: Tuple[int, int, int] = (28, 28, 1)
CONV_WIDTHS: Tuple[int, ...] = (32, 64)
MLP_WIDTHS: Tuple[int, ...] = (512, 256)


def _check_latent_dim(latent_dim: int) -> int:
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    return latent_dim


def _check_widths(widths: Sequence[int], length: Optional[int] = None) -> Tuple[int, ...]:
    ok = isinstance(widths, (list, tuple)) and len(widths) >= 1 and all(
        isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths)
    if not ok or (length is not None and len(widths) != length):
        count = f"{length}" if length is not None else "one or more"
        raise ValueError(f"widths must be a list of {count} positive integers, got {widths!r}")
    return tuple(widths)


def build_encoder(latent_dim: int = 2, widths: Sequence[int] = CONV_WIDTHS) -> tf.keras.Model:
    """Conv widths[0] s2 -> Conv widths[1] s2 -> Flatten -> Dense 2*latent_dim (mean and log-variance, concatenated).

    Args:
        latent_dim: Size of z.
        widths: The filters of the two 3x3 stride-2 convolutions (the seed's: 32, 64).

    Returns:
        A Keras Sequential taking [B, 28, 28, 1] floats and returning [B, 2 * latent_dim].

    Raises:
        ValueError: If `latent_dim` is not a positive integer or `widths` is not two positive integers.
    """
    latent_dim, widths = _check_latent_dim(latent_dim), _check_widths(widths, length=2)
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=IMAGE_SHAPE),
        tf.keras.layers.Conv2D(widths[0], kernel_size=3, strides=(2, 2), activation="relu"),
        tf.keras.layers.Conv2D(widths[1], kernel_size=3, strides=(2, 2), activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(2 * latent_dim),
    ], name="encoder")


def build_decoder(latent_dim: int = 2, widths: Sequence[int] = CONV_WIDTHS) -> tf.keras.Model:
    """Dense 7*7*widths[0] -> Reshape -> ConvT widths[1] s2 -> ConvT widths[0] s2 -> ConvT 1 s1, returning logits.

    Args:
        latent_dim: Size of z.
        widths: The encoder's widths, mirrored (the seed's: 32, 64 gives Dense 7*7*32, ConvT 64, ConvT 32).

    Returns:
        A Keras Sequential taking [B, latent_dim] and returning Bernoulli logits [B, 28, 28, 1] (no sigmoid).

    Raises:
        ValueError: If `latent_dim` is not a positive integer or `widths` is not two positive integers.
    """
    latent_dim, widths = _check_latent_dim(latent_dim), _check_widths(widths, length=2)
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(latent_dim, )),
        tf.keras.layers.Dense(units=7 * 7 * widths[0], activation="relu"),
        tf.keras.layers.Reshape(target_shape=(7, 7, widths[0])),
        tf.keras.layers.Conv2DTranspose(widths[1], kernel_size=3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2DTranspose(widths[0], kernel_size=3, strides=2, padding="same", activation="relu"),
        tf.keras.layers.Conv2DTranspose(1, kernel_size=3, strides=1, padding="same"),
    ], name="decoder")


def build_mlp_encoder(latent_dim: int = 2, widths: Sequence[int] = MLP_WIDTHS) -> tf.keras.Model:
    """Flatten -> Dense widths[0] relu -> ... -> Dense 2*latent_dim (the Keras VAE examples' 512-256 MLP).

    Args:
        latent_dim: Size of z.
        widths: Hidden layer sizes, input side first.

    Returns:
        A Keras Sequential taking [B, 28, 28, 1] floats and returning [B, 2 * latent_dim].

    Raises:
        ValueError: If `latent_dim` is not a positive integer or `widths` is not a list of positive integers.
    """
    latent_dim, widths = _check_latent_dim(latent_dim), _check_widths(widths)
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=IMAGE_SHAPE), tf.keras.layers.Flatten()] +
                               [tf.keras.layers.Dense(w, activation="relu") for w in widths] +
                               [tf.keras.layers.Dense(2 * latent_dim)], name="encoder")


def build_mlp_decoder(latent_dim: int = 2, widths: Sequence[int] = MLP_WIDTHS) -> tf.keras.Model:
    """Dense widths[-1] relu -> ... -> Dense widths[0] relu -> Dense 784 -> Reshape, returning logits.

    Args:
        latent_dim: Size of z.
        widths: The encoder's hidden sizes, mirrored here (input side first, as for the encoder).

    Returns:
        A Keras Sequential taking [B, latent_dim] and returning Bernoulli logits [B, 28, 28, 1] (no sigmoid).

    Raises:
        ValueError: If `latent_dim` is not a positive integer or `widths` is not a list of positive integers.
    """
    latent_dim, widths = _check_latent_dim(latent_dim), _check_widths(widths)
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(latent_dim, ))] +
                               [tf.keras.layers.Dense(w, activation="relu") for w in reversed(widths)] +
                               [tf.keras.layers.Dense(28 * 28), tf.keras.layers.Reshape(IMAGE_SHAPE)],
                               name="decoder")


@dataclass(frozen=True)
class ModelFamily:
    """An encoder/decoder pair selectable by name (`get_estimator(model=...)`, `pipeline-vae train --model`).

    Args:
        encoder: (latent_dim, widths) -> encoder.
        decoder: (latent_dim, widths) -> decoder.
        widths: The default widths.
        n_widths: How many widths the family takes (None: any number from one up).
    """
    encoder: Callable[[int, Sequence[int]], tf.keras.Model]
    decoder: Callable[[int, Sequence[int]], tf.keras.Model]
    widths: Tuple[int, ...]
    n_widths: Optional[int] = None

    def check(self, latent_dim: int, widths: Optional[Sequence[int]] = None) -> None:
        """Raise the ValueError `build` would, without building anything."""
        _check_latent_dim(latent_dim)
        if widths is not None:
            _check_widths(widths, self.n_widths)

    def build(self, latent_dim: int, widths: Optional[Sequence[int]] = None) -> Tuple[tf.keras.Model, tf.keras.Model]:
        """Both models, with `widths` (None: the family's default)."""
        widths = self.widths if widths is None else widths
        return self.encoder(latent_dim, widths), self.decoder(latent_dim, widths)


MODELS: Dict[str, ModelFamily] = {
    "conv": ModelFamily(build_encoder, build_decoder, CONV_WIDTHS, n_widths=2),
    "mlp": ModelFamily(build_mlp_encoder, build_mlp_decoder, MLP_WIDTHS),
}
DEFAULT_MODEL = "conv"
