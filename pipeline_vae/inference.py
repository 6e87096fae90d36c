"""Inference over a trained pair of `.h5` files: encode, sample, decode, reconstruct, generate, interpolate (straight
or spherical), traverse one latent unit.

    vae = CVAE.load("runs/default")            # the two .h5 files + the run's configuration (cvae_config.json)
    mean, logvar = vae.encode(x_test[:10])     # uint8 0..255 or float 0..1; [N, H, W, C] (or [N, H, W] for grey)
    images = vae.generate(16, seed=0)          # the likelihood's mean images, float32 in 0..1

Images are preprocessed as in training, by the run's own preprocessing ops as its configuration records them (the
`rescale` slot's `Rescale` to 0..1, the `binarize` slot's `Binarize` at the run's threshold if it binarized); the
decoder's output is read with the run's likelihood. Grey images come back as
[N, H, W] (as the seed's code expects), colour images as [N, H, W, 3]. Work is batched, so 10k images at once are fine.
"""
import os
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ops import PlanarFlow, Rescale, SplitOp, StandardNormalPrior
from ops.densities import Likelihood, check_decoder_output, clamp_logvar, get_likelihood, reparameterize
from ops.names import DEFAULT_LIKELIHOOD
from pipeline_vae.model_files import load_run_model
from pipeline_vae.run_config import CONFIG_FILE, MNIST_BINARIZE_THRESHOLD, MNIST_SHAPE, ConfigError, RunConfig
from pipeline_vae.slots import flow_op, model_settings, preprocessing_ops, prior_op


def to_unit_images(images: np.ndarray, image_shape: Tuple[int, int, int] = MNIST_SHAPE,
                   name: str = "images") -> np.ndarray:
    """Check images and convert them to float32 [N, H, W, C] in 0..1.

    Args:
        images: uint8 0..255 or float 0..1, shaped [N, H, W, C] or one [H, W, C] image (grey images may leave out C).
        image_shape: The (H, W, C) the model takes.
        name: The argument name, for messages.

    Returns:
        float32 [N, H, W, C] in 0..1.

    Raises:
        ValueError: If the shape, dtype or range is not one of the above, the array is empty, or it holds NaN/Inf.
    """
    image_shape = tuple(image_shape)
    h, w, c = image_shape
    expected = (f"uint8 images in 0..255 or float images in 0..1, shaped [N, {h}, {w}, {c}] or [{h}, {w}, {c}]" +
                (f" (or [N, {h}, {w}], [{h}, {w}])" if c == 1 else ""))
    x = np.asarray(images)
    if x.dtype == np.uint8:
        scale = 255.0
    elif x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: contains NaN or Inf; expected {expected}")
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(f"{name}: float values must be in 0..1, got {x.min():g}..{x.max():g} (pass uint8 for "
                             "0..255)")
        scale = 1.0
    else:
        raise ValueError(f"{name}: dtype {x.dtype} not supported; expected {expected}")
    if c == 1 and x.shape[-2:] == (h, w) and x.ndim in (2, 3):
        x = x[..., None]
    if x.shape == image_shape:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != image_shape:
        raise ValueError(f"{name}: shape {x.shape} not supported; expected {expected}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: is empty; expected at least one image")
    return x.astype(np.float32) / np.float32(scale)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation between vectors `a` and `b` [L] at fractions `t` [T] (Shoemake 1985; as White
    2016 uses it for latent spaces): sin((1 - t) W) / sin W * a + sin(t W) / sin W * b, W the angle between them.
    Vectors at (nearly) the same or opposite directions, or a zero vector, fall back to the straight line. Returns
    [T, L] float32; t = 0 gives `a`, t = 1 gives `b`."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)[:, None]
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    omega = np.arccos(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0)) if norm_a and norm_b else 0.0
    if np.sin(omega) < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


class CVAE:
    """A trained CVAE: the encoder and decoder models plus the preprocessing and likelihood they were trained with.

    Args:
        encoder: Keras model, [B, H, W, C] -> [B, 2 * latent_dim] (mean then log-variance).
        decoder: Keras model, [B, latent_dim] -> the likelihood's parameters [B, H, W, C * params].
        likelihood: The decoder likelihood's name ("bernoulli", "gaussian", "discretized_logistic").
        binarize_threshold: Images are cut at this grey level after scaling, as in training; None: not cut.
        batch_size: Images (or latent vectors) per model call.
        config: The run's configuration, when loaded from a run folder.
        prior: The run's `prior` slot op (`ops.StandardNormalPrior`, `MixturePrior`, `VampPrior`, `HierarchicalPrior`):
            its `log_prob` is
            log p(z) in the bounds, its `sample` what `generate` decodes. None: the standard normal.
        flow: The run's `flow` slot op (`ops.PlanarFlow`), or None: `encode` gives the Gaussian q_0(z|x) it starts
            from, `sample_latent` and `reconstruct` push z through it, and the bounds use its log q(z|x).

    Raises:
        ValueError: If the two models' latent sizes differ or their shapes do not fit each other and the likelihood.
    """
    def __init__(self,
                 encoder: tf.keras.Model,
                 decoder: tf.keras.Model,
                 likelihood: str = DEFAULT_LIKELIHOOD,
                 binarize_threshold: Optional[float] = MNIST_BINARIZE_THRESHOLD,
                 batch_size: int = 1000,
                 config: Optional[RunConfig] = None,
                 prior: Optional[StandardNormalPrior] = None,
                 flow: Optional[PlanarFlow] = None) -> None:
        self.likelihood: Likelihood = get_likelihood(likelihood)
        enc_out, dec_in = encoder.output_shape[-1], decoder.input_shape[-1]
        if enc_out is None or enc_out % 2:
            raise ValueError(f"encoder: output size must be 2 * latent_dim, got {encoder.output_shape}")
        image_shape = tuple(encoder.input_shape[1:])
        if len(image_shape) != 3 or None in image_shape:
            raise ValueError(f"encoder: input must be images [B, H, W, C], got {encoder.input_shape}")
        check_decoder_output(self.likelihood, (None, ) + image_shape, decoder.output_shape, "decoder")
        if enc_out // 2 != dec_in:
            raise ValueError(f"encoder and decoder do not match: the encoder's latent size is {enc_out // 2}, the "
                             f"decoder's is {dec_in}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if binarize_threshold is not None and not 0.0 <= binarize_threshold < 1.0:
            raise ValueError(f"binarize_threshold must be None or in [0, 1), got {binarize_threshold!r}")
        self.encoder, self.decoder, self.config = encoder, decoder, config
        self.prior = prior if prior is not None else StandardNormalPrior(inputs="z", outputs="log_pz")
        self.flow = flow
        #: Standard normal values per latent draw: the latent size, plus z2's with a hierarchical prior.
        self.noise_dim = self.prior.noise_size(dec_in)
        self.image_shape: Tuple[int, int, int] = image_shape
        self.latent_dim = dec_in
        self.threshold, self.batch_size = binarize_threshold, batch_size
        self._preprocessing = preprocessing_ops(binarize_threshold)
        self._split = SplitOp(inputs="meanlogvar", outputs=("mean", "logvar"))
        self._encode = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
        self._decode = tf.function(lambda z: self.likelihood.mean(decoder(z, training=False)), reduce_retracing=True)
        self._decode_raw = tf.function(lambda z: decoder(z, training=False), reduce_retracing=True)

    @property
    def binarize(self) -> bool:
        """Whether images are binarized before encoding (as in training)."""
        return self.threshold is not None

    @classmethod
    def load(cls, save_dir: str, batch_size: int = 1000, trust_code: bool = False) -> "CVAE":
        """Load a run folder: its configuration (`cvae_config.json`) and the encoder and decoder it names.

        No code from the folder runs: the models are rebuilt from the configuration and only their weights are read
        from the `.h5` files (`pipeline_vae.model_files`). The preprocessing and likelihood follow the configuration.
        A folder from before configurations recorded them is read as the MNIST run it was (Bernoulli; binarized at
        its recorded threshold, else 0.5, unless its `binarize` slot was dropped).

        Args:
            save_dir: The run folder.
            batch_size: Images (or latent vectors) per model call.
            trust_code: Load the files' own architectures (`tf.keras.models.load_model`), which runs any code they
                hold: only for a folder whose author you trust (e.g. trained with your own encoder or decoder).

        Raises:
            FileNotFoundError: If `save_dir` or a model file is missing.
            ValueError: If the configuration is nonsense, a file is unreadable, holds code layers (without
                `trust_code`) or does not fit the configuration, or the pair does not match.
        """
        config = RunConfig.read(save_dir)
        encoder = load_run_model(save_dir, config, "encoder", trust_code)
        decoder = load_run_model(save_dir, config, "decoder", trust_code)
        if tuple(encoder.input_shape[1:]) != tuple(config.image_shape):
            raise ConfigError(f"{os.path.join(save_dir, CONFIG_FILE)}: image_shape is {list(config.image_shape)}, but "
                              f"{config.path(save_dir, 'encoder')} takes images {list(encoder.input_shape[1:])}; "
                              "restore the file, or retrain with `pipeline-vae train --fresh`")
        prior = None
        if config.prior != "standard_normal":  # a learned prior: its parameters' file, read as weights too
            prior = prior_op(model_settings(config), load_run_model(save_dir, config, "prior", trust_code), encoder)
        flow = None
        if config.flow != "none":
            flow = flow_op(model_settings(config), load_run_model(save_dir, config, "flow", trust_code))
        return cls(encoder, decoder, likelihood=config.likelihood, binarize_threshold=config.binarize_threshold,
                   batch_size=batch_size, config=config, prior=prior, flow=flow)

    def _batched(self, fn: Callable[[tf.Tensor], tf.Tensor], x: np.ndarray) -> np.ndarray:
        return np.concatenate([fn(tf.constant(x[i:i + self.batch_size])).numpy()
                               for i in range(0, len(x), self.batch_size)])

    def _out(self, images: np.ndarray) -> np.ndarray:
        """[N, H, W, C] images back as the user gives grey ones: [N, H, W]."""
        return images[..., 0] if self.image_shape[2] == 1 else images

    def prepare(self, images: np.ndarray, name: str = "images") -> np.ndarray:
        """Images as the model saw them in training: float32 [N, H, W, C], binarized if the run binarized.

        The run's own preprocessing ops do it (`pipeline_vae.slots.preprocessing_ops`: the `rescale` slot's
        `Rescale` for uint8 images, then the `binarize` slot's `Binarize` at the run's threshold), in eval mode.
        Float images in 0..1 are already scaled and skip `Rescale`; for the discretized logistic they are rounded to
        the 256 levels k / 255 that it scores (uint8 images are on them already).

        Raises:
            ValueError: If `images` are not valid (see `to_unit_images`).
        """
        x = to_unit_images(images, self.image_shape, name)  # checked (and scaled) here: one error line, any input
        scaled = np.asarray(images).dtype != np.uint8
        if scaled and self.likelihood.name == "discretized_logistic":
            x = np.round(x * 255.0) / np.float32(255.0)
        # uint8 input goes to `Rescale` as uint8 again (k / 255 in float32 rounds back to k exactly)
        data = {"x": tf.constant(x if scaled else np.round(x * 255.0).astype(np.uint8))}
        for op in self._preprocessing:
            if scaled and isinstance(op, Rescale):
                continue
            outputs = op.forward([data[key] for key in op.inputs], {"mode": "eval"})
            data.update(zip(op.outputs, outputs if isinstance(outputs, list) else [outputs]))
        return data["x"].numpy()

    def encode(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Posterior parameters (mean, logvar) of q(z|x), each float32 [N, latent_dim]; logvar clipped to [-30, 20]
        as in training (`ops.densities.LOGVAR_MIN/MAX`).

        Raises:
            ValueError: If `images` are not valid.
        """
        out = self._batched(self._encode, self.prepare(images))
        mean, logvar = self._split.forward(tf.constant(out), {"mode": "eval"})  # the `split` slot's op
        return mean.numpy(), logvar.numpy()

    def sample_latent(self, mean: np.ndarray, logvar: np.ndarray, seed: Optional[int] = None) -> np.ndarray:
        """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from a NumPy generator seeded with `seed` (then through the
        run's posterior flow, if it has one).

        Raises:
            ValueError: If the shapes differ or are not [N, latent_dim].
        """
        mean, logvar = self._check_latent(mean, "mean"), self._check_latent(logvar, "logvar")
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {mean.shape} and logvar {logvar.shape} must have the same shape")
        eps = np.random.default_rng(seed).standard_normal(mean.shape).astype(np.float32)
        z = reparameterize(tf.constant(mean), clamp_logvar(tf.constant(logvar)), tf.constant(eps))
        return self._through_flow(z).numpy()

    def _through_flow(self, z: tf.Tensor) -> tf.Tensor:
        """z pushed through the run's posterior flow (unchanged without one)."""
        return z if self.flow is None else self.flow.transform(z)[0]

    def decode(self, z: np.ndarray, probs: bool = True) -> np.ndarray:
        """Decode latent vectors: the likelihood's mean images in 0..1 (Bernoulli probabilities, the location of a
        Gaussian or logistic), [N, H, W] for grey and [N, H, W, C] for colour images; with `probs=False` the decoder's
        raw output instead (Bernoulli logits; [N, H, W, C * params] when a likelihood has two parameters).

        Raises:
            ValueError: If `z` is not finite floats shaped [N, latent_dim] or [latent_dim].
        """
        z = self._check_latent(z, "z")
        if probs:
            return self._out(self._batched(self._decode, z))
        raw = self._batched(self._decode_raw, z)
        return raw[..., 0] if raw.shape[-1] == 1 else raw

    def reconstruct(self, images: np.ndarray, sample: bool = False, seed: Optional[int] = None) -> np.ndarray:
        """Encode then decode: the mean images of p(x | z), z = the posterior mean (or a sample; with a flow, the mean
        of q_0 pushed through it), shaped as `decode`.

        Raises:
            ValueError: If `images` are not valid.
        """
        mean, logvar = self.encode(images)
        if sample:
            return self.decode(self.sample_latent(mean, logvar, seed))
        return self.decode(self._through_flow(tf.constant(mean)).numpy())

    def generate(self, n: int, seed: Optional[int] = None) -> np.ndarray:
        """Decode `n` draws from the run's prior (N(0, I), or its learned prior): mean images, shaped as `decode`.

        Raises:
            ValueError: If `n` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((int(n), self.noise_dim)).astype(np.float32)
        z = self.prior.sample(tf.constant(eps), tf.constant(rng.random(int(n)), tf.float32))
        return self.decode(z.numpy())

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 10, spherical: bool = False) -> np.ndarray:
        """Decode `steps` points between the posterior means of images `a` and `b`: on the straight line, or with
        `spherical=True` on the great circle between them (`slerp`, which keeps the points' norms near the prior's
        typical radius instead of cutting through its low-density centre). With a posterior flow, each point is
        pushed through it, as `reconstruct` does.

        Returns:
            Mean images, shaped as `decode`; the first decodes `a`'s mean, the last `b`'s.

        Raises:
            ValueError: If `a` or `b` is not one valid image, or `steps` < 2.
        """
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        means = []
        for name, image in (("a", a), ("b", b)):
            if to_unit_images(image, self.image_shape, name).shape[0] != 1:
                raise ValueError(f"{name}: expected one image, got {np.shape(image)}")
            means.append(self.encode(image)[0][0])
        t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)
        points = slerp(means[0], means[1], t) if spherical else (1 - t[:, None]) * means[0] + t[:, None] * means[1]
        return self.decode(self._through_flow(tf.constant(points, tf.float32)).numpy())

    def traverse(self, image: np.ndarray, unit: int, values: Sequence[float]) -> np.ndarray:
        """Decode the posterior mean of one image with latent unit `unit` set to each of `values` in turn (the other
        units held at the mean): how the decoded image changes along one latent axis. With a posterior flow, the
        mean is pushed through it first and `unit` is a coordinate of the decoder's input.

        Returns:
            Mean images, one per value, shaped as `decode`.

        Raises:
            ValueError: If `image` is not one valid image, `unit` is not in [0, latent_dim), or `values` are not
                finite numbers.
        """
        if to_unit_images(image, self.image_shape, "image").shape[0] != 1:
            raise ValueError(f"image: expected one image, got {np.shape(image)}")
        if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= unit < self.latent_dim:
            raise ValueError(f"unit: expected an integer in [0, {self.latent_dim}), got {unit!r}")
        values = np.asarray(values, np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError("values: expected a non-empty list of finite numbers")
        base = self._through_flow(tf.constant(self.encode(image)[0])).numpy()[0]
        z = np.repeat(base[None], len(values), axis=0)
        z[:, unit] = values
        return self.decode(z)

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
