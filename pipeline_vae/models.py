"""The encoder/decoder pairs: the convolutional one of the TensorFlow / FastEstimator CVAE tutorials (the default),
the MLP of the Keras VAE examples and the tanh MLP of the VAE papers (Burda et al. 2016), with widths (and so the conv depth) as parameters, for images of any
H x W x C (the decoder's output matches the input exactly). MNIST's 28x28x1 with the default widths is exactly the
seed's architecture.

    encoder, decoder = MODELS["mlp"].build(latent_dim=2, widths=(512, 256))
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import tensorflow as tf

from pipeline_vae.model_shapes import (CONV_WIDTHS, IMAGE_SHAPE, LATENT_DIM, MLP_WIDTHS, TANH_MLP_WIDTHS,
                                       _check_conv_depth, _check_latent_dim, _check_widths, check_image_shape)

def build_encoder(latent_dim: int = LATENT_DIM, widths: Sequence[int] = CONV_WIDTHS,
                  image_shape: Sequence[int] = IMAGE_SHAPE) -> tf.keras.Model:
    """One 3x3 stride-2 Conv per width -> Flatten -> Dense 2*latent_dim (mean and log-variance, concatenated).

    With the defaults this is the seed's encoder: Conv 32 s2 -> Conv 64 s2 on 28x28x1.

    Args:
        latent_dim: Size of z.
        widths: The filters of the stride-2 convolutions, input side first (the seed's: 32, 64).
        image_shape: (H, W, C) of the input images.

    Returns:
        A Keras Sequential taking [B, H, W, C] floats and returning [B, 2 * latent_dim].

    Raises:
        ValueError: If `latent_dim` is not a positive integer, `widths` not positive integers, `image_shape` not three
            positive integers, or the image too small for that many stride-2 convolutions.
    """
    latent_dim, widths, image_shape = _check_latent_dim(latent_dim), _check_widths(widths), check_image_shape(
        image_shape)
    _check_conv_depth(image_shape, widths)
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=image_shape)] + [
        tf.keras.layers.Conv2D(w, kernel_size=3, strides=(2, 2), activation="relu") for w in widths
    ] + [tf.keras.layers.Flatten(), tf.keras.layers.Dense(2 * latent_dim)], name="encoder")


def build_decoder(latent_dim: int = LATENT_DIM, widths: Sequence[int] = CONV_WIDTHS,
                  image_shape: Sequence[int] = IMAGE_SHAPE, out_channels: Optional[int] = None) -> tf.keras.Model:
    """Dense -> Reshape -> one 3x3 stride-2 ConvT per width (mirrored) -> ConvT out_channels s1 [-> crop], linear.

    The start grid is ceil(H / 2^depth) x ceil(W / 2^depth) with widths[0] channels; each transposed convolution
    doubles it, and a final crop (only when H or W is not a multiple of 2^depth) makes the output exactly H x W. With
    the defaults this is the seed's decoder: Dense 7*7*32 -> ConvT 64 s2 -> ConvT 32 s2 -> ConvT 1, 28x28x1, no crop.

    Args:
        latent_dim: Size of z.
        widths: The encoder's widths, mirrored (the seed's: 32, 64 gives Dense 7*7*32, ConvT 64, ConvT 32).
        image_shape: (H, W, C) of the images it decodes to.
        out_channels: Channels of the output (the likelihood's parameters per pixel); None: C (one logit per value).

    Returns:
        A Keras Sequential taking [B, latent_dim] and returning [B, H, W, out_channels] (no activation).

    Raises:
        ValueError: For the reasons `build_encoder` gives, or `out_channels` not a positive integer.
    """
    latent_dim, widths, image_shape = _check_latent_dim(latent_dim), _check_widths(widths), check_image_shape(
        image_shape)
    out_channels = _check_out_channels(out_channels, image_shape)
    _check_conv_depth(image_shape, widths)
    height, width = image_shape[0], image_shape[1]
    scale = 2**len(widths)
    start = (-(-height // scale), -(-width // scale))
    layers = [
        tf.keras.layers.InputLayer(input_shape=(latent_dim, )),
        tf.keras.layers.Dense(units=start[0] * start[1] * widths[0], activation="relu"),
        tf.keras.layers.Reshape(target_shape=(start[0], start[1], widths[0])),
    ] + [
        tf.keras.layers.Conv2DTranspose(w, kernel_size=3, strides=2, padding="same", activation="relu")
        for w in reversed(widths)
    ] + [tf.keras.layers.Conv2DTranspose(out_channels, kernel_size=3, strides=1, padding="same")]
    extra = (start[0] * scale - height, start[1] * scale - width)
    if any(extra):
        layers.append(tf.keras.layers.Cropping2D(((extra[0] // 2, extra[0] - extra[0] // 2),
                                                  (extra[1] // 2, extra[1] - extra[1] // 2))))
    return tf.keras.Sequential(layers, name="decoder")


def _check_out_channels(out_channels: Optional[int], image_shape: Tuple[int, int, int]) -> int:
    if out_channels is None:
        return image_shape[2]
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
        raise ValueError(f"out_channels must be a positive integer or None, got {out_channels!r}")
    return out_channels


def build_mlp_encoder(latent_dim: int = LATENT_DIM, widths: Sequence[int] = MLP_WIDTHS,
                      image_shape: Sequence[int] = IMAGE_SHAPE, activation: str = "relu") -> tf.keras.Model:
    """Flatten -> Dense widths[0] relu -> ... -> Dense 2*latent_dim (the Keras VAE examples' 512-256 MLP).

    Args:
        latent_dim: Size of z.
        widths: Hidden layer sizes, input side first.
        image_shape: (H, W, C) of the input images.
        activation: The hidden layers' activation ("tanh" in Burda et al.'s MLP).

    Returns:
        A Keras Sequential taking [B, H, W, C] floats and returning [B, 2 * latent_dim].

    Raises:
        ValueError: If `latent_dim` is not a positive integer, `widths` is not a list of positive integers or
            `image_shape` not three positive integers.
    """
    latent_dim, widths, image_shape = _check_latent_dim(latent_dim), _check_widths(widths), check_image_shape(
        image_shape)
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=image_shape), tf.keras.layers.Flatten()] +
                               [tf.keras.layers.Dense(w, activation=activation) for w in widths] +
                               [tf.keras.layers.Dense(2 * latent_dim)], name="encoder")


def build_mlp_decoder(latent_dim: int = LATENT_DIM, widths: Sequence[int] = MLP_WIDTHS,
                      image_shape: Sequence[int] = IMAGE_SHAPE, out_channels: Optional[int] = None,
                      activation: str = "relu") -> tf.keras.Model:
    """Dense widths[-1] relu -> ... -> Dense widths[0] relu -> Dense H*W*out_channels -> Reshape, linear.

    Args:
        latent_dim: Size of z.
        widths: The encoder's hidden sizes, mirrored here (input side first, as for the encoder).
        image_shape: (H, W, C) of the images it decodes to.
        out_channels: Channels of the output (the likelihood's parameters per pixel); None: C (one logit per value).
        activation: The hidden layers' activation.

    Returns:
        A Keras Sequential taking [B, latent_dim] and returning [B, H, W, out_channels] (no activation).

    Raises:
        ValueError: For the reasons `build_mlp_encoder` gives, or `out_channels` not a positive integer.
    """
    latent_dim, widths, image_shape = _check_latent_dim(latent_dim), _check_widths(widths), check_image_shape(
        image_shape)
    out_channels = _check_out_channels(out_channels, image_shape)
    out_shape = (image_shape[0], image_shape[1], out_channels)
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(latent_dim, ))] +
                               [tf.keras.layers.Dense(w, activation=activation) for w in reversed(widths)] +
                               [tf.keras.layers.Dense(out_shape[0] * out_shape[1] * out_shape[2]),
                                tf.keras.layers.Reshape(out_shape)], name="decoder")


@dataclass(frozen=True)
class ModelFamily:
    """An encoder/decoder pair selectable by name (`get_estimator(model=...)`, `pipeline-vae train --model`).

    Args:
        encoder: (latent_dim, widths, image_shape) -> encoder.
        decoder: (latent_dim, widths, image_shape, out_channels) -> decoder.
        widths: The default widths.
        check_shape: (image_shape, widths) -> None, raising ValueError for images the family cannot take.
    """
    encoder: Callable[..., tf.keras.Model]
    decoder: Callable[..., tf.keras.Model]
    widths: Tuple[int, ...]
    check_shape: Optional[Callable[[Tuple[int, int, int], Tuple[int, ...]], None]] = None

    def check(self, latent_dim: int, widths: Optional[Sequence[int]] = None,
              image_shape: Sequence[int] = IMAGE_SHAPE) -> None:
        """Raise the ValueError `build` would, without building anything."""
        _check_latent_dim(latent_dim)
        image_shape = check_image_shape(image_shape)
        widths = _check_widths(self.widths if widths is None else widths)
        if self.check_shape is not None:
            self.check_shape(image_shape, widths)

    def build(self, latent_dim: int, widths: Optional[Sequence[int]] = None, image_shape: Sequence[int] = IMAGE_SHAPE,
              out_channels: Optional[int] = None) -> Tuple[tf.keras.Model, tf.keras.Model]:
        """Both models, with `widths` (None: the family's default), for `image_shape` images."""
        widths = self.widths if widths is None else widths
        return (self.encoder(latent_dim, widths, image_shape),
                self.decoder(latent_dim, widths, image_shape, out_channels))


def build_tanh_mlp_encoder(latent_dim: int = LATENT_DIM, widths: Sequence[int] = TANH_MLP_WIDTHS,
                           image_shape: Sequence[int] = IMAGE_SHAPE) -> tf.keras.Model:
    """Burda et al.'s one-stochastic-layer encoder (IWAE, 2016, Appendix C): 784-200-200 tanh -> mean and
    log-variance of 50 units with the defaults (`build_mlp_encoder` with tanh)."""
    return build_mlp_encoder(latent_dim, widths, image_shape, activation="tanh")


def build_tanh_mlp_decoder(latent_dim: int = LATENT_DIM, widths: Sequence[int] = TANH_MLP_WIDTHS,
                           image_shape: Sequence[int] = IMAGE_SHAPE, out_channels: Optional[int] = None
                           ) -> tf.keras.Model:
    """Burda et al.'s decoder: z -> 200-200 tanh -> one logit per pixel (`build_mlp_decoder` with tanh)."""
    return build_mlp_decoder(latent_dim, widths, image_shape, out_channels, activation="tanh")


def _check_count(name: str, value: int) -> int:
    """`value` if it is a positive integer (a number of components or steps); else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_mixture_prior(components: int, latent_dim: int = LATENT_DIM) -> tf.keras.Model:
    """The parameters of `ops.MixturePrior` as a Keras model of standard layers (so its file loads as weights):
    ones [B, 1] -> [B, 2 * C * L], the C means (initialized N(0, 1), spread over the prior's region) then the C
    log-variances (initialized 0), row by row. Each Dense layer's kernel *is* the parameter.

    Raises:
        ValueError: If `components` or `latent_dim` is not a positive integer.
    """
    latent_dim, components = _check_latent_dim(latent_dim), _check_count("components", components)
    ones = tf.keras.Input(shape=(1, ))
    means = tf.keras.layers.Dense(components * latent_dim, use_bias=False, name="means",
                                  kernel_initializer=tf.keras.initializers.RandomNormal(0.0, 1.0, seed=None))(ones)
    logvars = tf.keras.layers.Dense(components * latent_dim, use_bias=False, name="logvars",
                                    kernel_initializer="zeros")(ones)
    return tf.keras.Model(ones, tf.keras.layers.Concatenate(name="mixture")([means, logvars]), name="prior")


def build_pseudo_inputs(components: int, image_shape: Sequence[int] = IMAGE_SHAPE) -> tf.keras.Model:
    """The pseudo-inputs of `ops.VampPrior` as a Keras model of standard layers: ones [B, 1] -> sigmoid of a Dense
    kernel, [B, K * H * W * C] in (0, 1), read as K images. Initialized near 0.5 (kernel N(0, 0.01)).

    Raises:
        ValueError: If `components` is not a positive integer or `image_shape` not three positive integers.
    """
    image_shape, components = check_image_shape(image_shape), _check_count("components", components)
    ones = tf.keras.Input(shape=(1, ))
    size = components * image_shape[0] * image_shape[1] * image_shape[2]
    values = tf.keras.layers.Dense(size, use_bias=False, activation="sigmoid", name="pseudo_inputs",
                                   kernel_initializer=tf.keras.initializers.RandomNormal(0.0, 0.01))(ones)
    return tf.keras.Model(ones, values, name="prior")


def build_hierarchical_prior(latent_dim: int = LATENT_DIM, upper_latent_dim: int = 50) -> tf.keras.Model:
    """The two conditionals of `ops.HierarchicalPrior` (Burda et al. 2016's second stochastic layer): inputs
    [z1 [B, L1], z2 [B, L2]]; outputs [q(z2|z1): z1 -> L2 tanh -> L2 tanh -> mean and log-variance [B, 2 L2],
    p(z1|z2): z2 -> L2 tanh -> L2 tanh -> mean and log-variance [B, 2 L1]] (Burda et al.'s 50-50 tanh layers for
    L2 = 50). Standard Keras layers only.

    Raises:
        ValueError: If a size is not a positive integer.
    """
    latent_dim, upper = _check_latent_dim(latent_dim), _check_latent_dim(upper_latent_dim)
    z1, z2 = tf.keras.Input(shape=(latent_dim, ), name="z1"), tf.keras.Input(shape=(upper, ), name="z2")
    h = tf.keras.layers.Dense(upper, activation="tanh", name="q_hidden_1")(z1)
    h = tf.keras.layers.Dense(upper, activation="tanh", name="q_hidden_2")(h)
    g = tf.keras.layers.Dense(upper, activation="tanh", name="p_hidden_1")(z2)
    g = tf.keras.layers.Dense(upper, activation="tanh", name="p_hidden_2")(g)
    outputs = [tf.keras.layers.Dense(2 * upper, name="q_z2")(h), tf.keras.layers.Dense(2 * latent_dim, name="p_z1")(g)]
    return tf.keras.Model([z1, z2], outputs, name="prior")


def build_planar_flow(steps: int, latent_dim: int = LATENT_DIM) -> tf.keras.Model:
    """The parameters of `ops.PlanarFlow` as a Keras model of standard layers: ones [B, 1] -> [B, K * (2 L + 1)],
    the K vectors u, the K vectors w (both initialized N(0, 0.01): each step starts near the identity) and the K
    offsets b (zeros). Each Dense layer's kernel is the parameter.

    Raises:
        ValueError: If `steps` or `latent_dim` is not a positive integer.
    """
    latent_dim, steps = _check_latent_dim(latent_dim), _check_count("steps", steps)
    ones = tf.keras.Input(shape=(1, ))
    parts = [tf.keras.layers.Dense(steps * latent_dim, use_bias=False, name=name,
                                   kernel_initializer=tf.keras.initializers.RandomNormal(0.0, 0.01))(ones)
             for name in ("u", "w")]
    parts += [
        tf.keras.layers.Dense(steps, use_bias=False, name="b", kernel_initializer="zeros")(ones)]
    return tf.keras.Model(ones, tf.keras.layers.Concatenate(name="steps")(parts), name="flow")


MODELS: Dict[str, ModelFamily] = {
    "conv": ModelFamily(build_encoder, build_decoder, CONV_WIDTHS, check_shape=_check_conv_depth),
    "mlp": ModelFamily(build_mlp_encoder, build_mlp_decoder, MLP_WIDTHS),
    "mlp_tanh": ModelFamily(build_tanh_mlp_encoder, build_tanh_mlp_decoder, TANH_MLP_WIDTHS),
}
DEFAULT_MODEL = "conv"
