"""Inference over a trained pair of `.h5` files: encode, sample, decode, reconstruct, generate, interpolate.

    vae = CVAE.load("runs/default")            # encoder_best_loss.h5 + decoder_best_loss.h5 (+ cvae_config.json)
    mean, logvar = vae.encode(x_test[:10])     # uint8 0..255 or float 0..1; [N,28,28], [N,28,28,1] or one image
    digits = vae.generate(16, seed=0)          # Bernoulli means, float32 [16, 28, 28]

Images are preprocessed as in training (scaled to 0..1, binarized at 0.5 unless the run dropped its `binarize` slot,
as recorded in `cvae_config.json`). Work is batched, so 10k images at once are fine.
"""
import json
import os
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

from ops.densities import LOGVAR_MAX, LOGVAR_MIN

ENCODER_FILE = "encoder_best_loss.h5"
DECODER_FILE = "decoder_best_loss.h5"
#: The file each run writes beside its models, describing how they were made.
CONFIG_FILE = "cvae_config.json"
IMAGE_SHAPE = (28, 28)
EXPECTED_IMAGES = "uint8 images in 0..255 or float images in 0..1, shaped [N, 28, 28], [N, 28, 28, 1], [28, 28] or " \
                  "[28, 28, 1]"


def load_h5_model(path: str, what: str) -> tf.keras.Model:
    """Load a full Keras model from `.h5` with one clear error line when the file is missing or unreadable.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: If it is not a loadable full-model `.h5` (e.g. truncated, or weights only).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} model {path} does not exist (train with `pipeline-vae train --save-dir DIR`)")
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as err:  # h5py raises OSError, Keras ValueError/KeyError, for damaged or weights-only files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{what} model {path} is not a readable Keras .h5 model ({first})") from err


def to_unit_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Check images and convert them to float32 [N, 28, 28, 1] in 0..1.

    Args:
        images: uint8 0..255 or float 0..1, shaped [N, 28, 28], [N, 28, 28, 1], or a single [28, 28] / [28, 28, 1].
        name: The argument name, for messages.

    Returns:
        float32 [N, 28, 28, 1] in 0..1.

    Raises:
        ValueError: If the shape, dtype or range is not one of the above, the array is empty, or it holds NaN/Inf.
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        scale = 255.0
    elif x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: contains NaN or Inf; expected {EXPECTED_IMAGES}")
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(f"{name}: float values must be in 0..1, got {x.min():g}..{x.max():g} (pass uint8 for "
                             "0..255)")
        scale = 1.0
    else:
        raise ValueError(f"{name}: dtype {x.dtype} not supported; expected {EXPECTED_IMAGES}")
    if x.shape in (IMAGE_SHAPE, IMAGE_SHAPE + (1, )):
        x = x[None]
    if x.ndim == 4 and x.shape[1:] == IMAGE_SHAPE + (1, ):
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{name}: shape {x.shape} not supported; expected {EXPECTED_IMAGES}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: is empty; expected at least one image")
    return (x.astype(np.float32) / np.float32(scale))[..., None]


class CVAE:
    """A trained CVAE: the encoder and decoder models plus the preprocessing they were trained with.

    Args:
        encoder: Keras model, [B, 28, 28, 1] -> [B, 2 * latent_dim] (mean then log-variance).
        decoder: Keras model, [B, latent_dim] -> logits [B, 28, 28, 1].
        binarize: Whether images are thresholded (> `threshold`) after scaling, as in training.
        threshold: The binarization threshold.
        batch_size: Images (or latent vectors) per model call.

    Raises:
        ValueError: If the two models' latent sizes differ or their shapes are not a CVAE's.
    """
    def __init__(self,
                 encoder: tf.keras.Model,
                 decoder: tf.keras.Model,
                 binarize: bool = True,
                 threshold: float = 0.5,
                 batch_size: int = 1000) -> None:
        enc_out, dec_in = encoder.output_shape[-1], decoder.input_shape[-1]
        if enc_out is None or enc_out % 2:
            raise ValueError(f"encoder: output size must be 2 * latent_dim, got {encoder.output_shape}")
        if tuple(decoder.output_shape[1:]) != IMAGE_SHAPE + (1, ):
            raise ValueError(f"decoder: output must be [B, 28, 28, 1], got {decoder.output_shape}")
        if enc_out // 2 != dec_in:
            raise ValueError(f"encoder and decoder do not match: the encoder's latent size is {enc_out // 2}, the "
                             f"decoder's is {dec_in}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = dec_in
        self.binarize, self.threshold, self.batch_size = binarize, threshold, batch_size
        self._encode = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
        self._decode = tf.function(lambda z: decoder(z, training=False), reduce_retracing=True)

    @classmethod
    def load(cls, save_dir: str, batch_size: int = 1000) -> "CVAE":
        """Load `encoder_best_loss.h5` and `decoder_best_loss.h5` (and `cvae_config.json`, if any) from `save_dir`.

        The preprocessing follows the run's config: binarized at its `binarize_threshold` if the run had a `binarize`
        slot, else only scaled to 0..1. A folder without a config (or a config from before the threshold was
        recorded) gets the seed's binarization at 0.5.

        Raises:
            FileNotFoundError: If `save_dir` or a model file is missing.
            ValueError: If a file is unreadable or the pair does not match.
        """
        if not os.path.isdir(save_dir):
            raise FileNotFoundError(f"save_dir {save_dir} does not exist or is not a folder")
        encoder = load_h5_model(os.path.join(save_dir, ENCODER_FILE), "encoder")
        decoder = load_h5_model(os.path.join(save_dir, DECODER_FILE), "decoder")
        binarize, threshold = True, 0.5  # the seed's preprocessing, for folders without a config
        config_path = os.path.join(save_dir, CONFIG_FILE)
        if os.path.isfile(config_path):
            try:
                with open(config_path) as file:
                    config = json.load(file)
                binarize = "binarize" in config.get("slots", {"binarize": []})
                threshold = float(config.get("binarize_threshold") or 0.5)  # runs before it was recorded used 0.5
            except (ValueError, TypeError, AttributeError) as err:
                raise ValueError(f"{config_path} is not a valid run config ({err})") from err
        return cls(encoder, decoder, binarize=binarize, threshold=threshold, batch_size=batch_size)

    def _batched(self, fn: Callable[[tf.Tensor], tf.Tensor], x: np.ndarray) -> np.ndarray:
        return np.concatenate([fn(tf.constant(x[i:i + self.batch_size])).numpy()
                               for i in range(0, len(x), self.batch_size)])

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Images as the model saw them in training: float32 [N, 28, 28, 1], binarized if the run binarized.

        Raises:
            ValueError: If `images` are not valid (see `to_unit_images`).
        """
        x = to_unit_images(images)
        return (x > self.threshold).astype(np.float32) if self.binarize else x

    def encode(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Posterior parameters (mean, logvar) of q(z|x), each float32 [N, latent_dim]; logvar clipped to [-30, 20]
        as in training (`ops.densities.LOGVAR_MIN/MAX`).

        Raises:
            ValueError: If `images` are not valid.
        """
        out = self._batched(self._encode, self.prepare(images))
        return out[:, :self.latent_dim], np.clip(out[:, self.latent_dim:], LOGVAR_MIN, LOGVAR_MAX)

    def sample_latent(self, mean: np.ndarray, logvar: np.ndarray, seed: Optional[int] = None) -> np.ndarray:
        """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from a NumPy generator seeded with `seed`.

        Raises:
            ValueError: If the shapes differ or are not [N, latent_dim].
        """
        mean, logvar = self._check_latent(mean, "mean"), self._check_latent(logvar, "logvar")
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {mean.shape} and logvar {logvar.shape} must have the same shape")
        eps = np.random.default_rng(seed).standard_normal(mean.shape).astype(np.float32)
        return mean + np.exp(0.5 * np.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)) * eps

    def decode(self, z: np.ndarray, probs: bool = True) -> np.ndarray:
        """Decode latent vectors to images, float32 [N, 28, 28]: Bernoulli means if `probs`, else logits.

        Raises:
            ValueError: If `z` is not finite floats shaped [N, latent_dim] or [latent_dim].
        """
        logits = self._batched(self._decode, self._check_latent(z, "z"))[..., 0]
        return tf.sigmoid(logits).numpy() if probs else logits

    def reconstruct(self, images: np.ndarray, sample: bool = False, seed: Optional[int] = None) -> np.ndarray:
        """Encode then decode: Bernoulli means [N, 28, 28] of p(x | z), z = the posterior mean (or a sample).

        Raises:
            ValueError: If `images` are not valid.
        """
        mean, logvar = self.encode(images)
        return self.decode(self.sample_latent(mean, logvar, seed) if sample else mean)

    def generate(self, n: int, seed: Optional[int] = None) -> np.ndarray:
        """Decode `n` draws from the prior N(0, I): Bernoulli means [n, 28, 28].

        Raises:
            ValueError: If `n` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        z = np.random.default_rng(seed).standard_normal((int(n), self.latent_dim)).astype(np.float32)
        return self.decode(z)

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 10) -> np.ndarray:
        """Decode `steps` points on the straight line between the posterior means of images `a` and `b`.

        Returns:
            Bernoulli means [steps, 28, 28]; the first decodes `a`'s mean, the last `b`'s.

        Raises:
            ValueError: If `a` or `b` is not one valid image, or `steps` < 2.
        """
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        means = []
        for name, image in (("a", a), ("b", b)):
            if to_unit_images(image, name).shape[0] != 1:
                raise ValueError(f"{name}: expected one image, got {np.shape(image)}")
            means.append(self.encode(image)[0][0])
        t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)[:, None]
        return self.decode((1 - t) * means[0] + t * means[1])

    def _check_latent(self, z: np.ndarray, name: str) -> np.ndarray:
        z = np.asarray(z)
        if z.dtype.kind not in "fiu":
            raise ValueError(f"{name}: expected a float array [N, {self.latent_dim}], got dtype {z.dtype}")
        with np.errstate(over="ignore"):
            z = z.astype(np.float32)  # values beyond float32 become inf and are refused below
        if z.shape == (self.latent_dim, ):
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_dim or z.shape[0] == 0:
            raise ValueError(f"{name}: expected shape [N, {self.latent_dim}] (N >= 1), got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise ValueError(f"{name}: contains NaN or Inf (or values beyond float32's range)")
        return z
