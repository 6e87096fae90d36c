"""The VAE math, in one place: the decoder likelihoods, the KL, the log importance weights and their log-mean-exp
(the IW bound), used by the loss ops, the metrics, the inference API and the sample pictures.

Likelihoods (`LIKELIHOODS`, chosen by name; the decoder's output `x_logit` holds `params` values per image channel):
    bernoulli              1: logits; targets binarized or in [0, 1] (the seed's)
    gaussian               2: location (sigmoid) and log-scale per value; a density on [0, 1]
    discretized_logistic   2: location (sigmoid) and log-scale per value; a probability of each of 256 levels
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from ops.names import DEFAULT_LIKELIHOOD, LIKELIHOOD_NAMES

LOG_2PI = math.log(2.0 * math.pi)
#: The range the posterior log-variance is clipped to wherever the encoder's output is split (SplitOp, the metrics,
#: the inference API). exp(20) = 4.9e8 and exp(30) = 1.1e13 (for exp(-logvar)) stay far inside float32 (3.4e38), so
#: the KL, the Gaussian log-densities and the reparameterization cannot overflow; a variance of e^-30 = 9e-14 is a
#: point mass for any practical purpose. A trained CVAE on MNIST uses about -12..1.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def clamp_logvar(logvar: tf.Tensor) -> tf.Tensor:
    """Clip log-variances to [LOGVAR_MIN, LOGVAR_MAX] (the gradient is zero outside, as for any clip)."""
    return tf.clip_by_value(logvar, LOGVAR_MIN, LOGVAR_MAX)


def log_normal_pdf(sample: tf.Tensor, mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """Log-density of a diagonal Gaussian, summed over the last axis.

    log N(x; mu, diag(exp(logvar))) = -1/2 * sum_i [ (x_i - mu_i)^2 * exp(-logvar_i) + logvar_i + log(2 pi) ]

    Args:
        sample: Points x, [..., D].
        mean: Means mu, broadcastable to `sample`.
        logvar: Log-variances, broadcastable to `sample`.

    Returns:
        The log-density of each point, [...] (the last axis summed).
    """
    sample, mean, logvar = (tf.convert_to_tensor(t, dtype=tf.float32) for t in (sample, mean, logvar))
    return -0.5 * tf.reduce_sum(tf.square(sample - mean) * tf.exp(-logvar) + logvar + LOG_2PI, axis=-1)


def reparameterize(mean: tf.Tensor, logvar: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
    """z = mean + exp(logvar / 2) * eps: the reparameterization of N(mean, diag(exp(logvar))) at standard normal noise
    `eps` (broadcast against `mean` and `logvar`). The reparameterize ops and the evaluation draw through it."""
    return eps * tf.exp(logvar * 0.5) + mean


def monte_carlo_kl(z: tf.Tensor, mean: tf.Tensor, logvar: tf.Tensor, log_pz: Optional[tf.Tensor] = None,
                   log_qz: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The one-sample estimate of KL(q(z|x) || p(z)) at a sample z: log q(z|x) - log p(z), summed over the last axis.

    Minus it, added to log p(x|z), is the log importance weight log p(x, z) - log q(z|x) of the IW bound (Burda et al.
    2016, Eq. 8), whose average over one sample is the Monte Carlo ELBO.

    Args:
        z: Samples, [..., L].
        mean: Posterior means, broadcastable to `z`.
        logvar: Posterior log-variances, broadcastable to `z`.
        log_pz: log p(z) of each sample under the prior, [...] (the `prior` slot's output); None: the standard normal.
        log_qz: log q(z|x) of each sample, [...] (the `flow` slot's output: a flow's density); None: the diagonal
            Gaussian N(mean, diag(exp(logvar))).

    Returns:
        log q(z|x) - log p(z) per sample, [...].
    """
    log_prior = log_normal_pdf(z, 0.0, 0.0) if log_pz is None else tf.cast(log_pz, tf.float32)
    log_posterior = log_normal_pdf(z, mean, logvar) if log_qz is None else tf.cast(log_qz, tf.float32)
    return log_posterior - log_prior


def log_normal_mixture(z: tf.Tensor, means: tf.Tensor, logvars: tf.Tensor) -> tf.Tensor:
    """Log-density of an equally weighted mixture of C diagonal Gaussians, at each point.

    log p(z) = log (1/C sum_c N(z; mu_c, diag(exp(logvar_c)))), computed stably with `log_mean_exp` over the
    components. The mixture-of-Gaussians prior's density, and the VampPrior's (Tomczak & Welling 2018, Eq. 9: the
    components are the posteriors of its pseudo-inputs).

    Args:
        z: Points, [..., L].
        means: The components' means, [C, L].
        logvars: Their log-variances, [C, L].

    Returns:
        log p(z) per point, [...].
    """
    z = tf.convert_to_tensor(z, tf.float32)
    return log_mean_exp(log_normal_pdf(z[..., None, :], means, logvars), axis=-1)  # [..., C] -> [...]


def gaussian_negative_entropy(logvar: tf.Tensor) -> tf.Tensor:
    """E_q[log q(z)] of a diagonal Gaussian q in closed form: -1/2 sum_d (1 + log(2 pi) + logvar_d), over the last axis.

    With a one-sample estimate of E_q[-log p(z)] it gives the KL to any prior p whose density has no closed-form KL
    (`AnalyticKLLoss` with a learned prior).
    """
    return -0.5 * tf.reduce_sum(1.0 + LOG_2PI + tf.convert_to_tensor(logvar, tf.float32), axis=-1)


def log_mean_exp(values: tf.Tensor, axis: int = 0) -> tf.Tensor:
    """log(1/K sum_k exp(values_k)) along `axis` (K its length), computed stably with log-sum-exp.

    Over K log importance weights this is the K-sample IW bound (Burda et al. 2016, Eq. 8).

    Args:
        values: Log-values, any float dtype.
        axis: The axis averaged over.

    Returns:
        `values` reduced over `axis`.
    """
    values = tf.convert_to_tensor(values)
    count = tf.cast(tf.shape(values)[axis], values.dtype)
    return tf.reduce_logsumexp(values, axis=axis) - tf.math.log(count)


def bernoulli_log_likelihood(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Bernoulli log-likelihood log p(x | logits), summed over every axis but the first.

    Computed as minus the sigmoid cross-entropy, which is numerically stable for any logit. For targets in [0, 1] that
    are not binary this is the cross-entropy objective (not a normalized likelihood).

    Args:
        x: Targets in [0, 1], [B, ...].
        logits: Decoder logits, the same shape as `x`.

    Returns:
        log p(x | logits) per example, [B].
    """
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(x, logits.dtype), logits=logits)
    return -tf.reduce_sum(tf.reshape(ce, [tf.shape(ce)[0], -1]), axis=1)


def kl_to_standard_normal(mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) per example, in closed form (Kingma & Welling 2014, Appendix B).

    = 1/2 * sum_d (exp(logvar_d) + mean_d^2 - 1 - logvar_d), summed over the last axis.

    Args:
        mean: Posterior means, [..., L].
        logvar: Posterior log-variances, [..., L].

    Returns:
        The KL divergence of each row, [...].
    """
    return 0.5 * tf.reduce_sum(tf.exp(logvar) + tf.square(mean) - 1.0 - logvar, axis=-1)


def _sum_per_example(values: tf.Tensor) -> tf.Tensor:
    """Sum over every axis but the first: [B, ...] -> [B]."""
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def gaussian_log_likelihood(x: tf.Tensor, mean: tf.Tensor, log_scale: tf.Tensor) -> tf.Tensor:
    """Gaussian log-density log N(x; mean, exp(log_scale)^2), summed over every axis but the first.

    = sum_i [ -1/2 ((x_i - mean_i) / s_i)^2 - log s_i - 1/2 log(2 pi) ],  s_i = exp(log_scale_i).

    A density, not a probability: for images scaled to [0, 1] it is comparable with a discrete likelihood only after
    the change of scale (see `bits_per_dim`).

    Args:
        x: Targets, [B, ...].
        mean: Means, the same shape as `x`.
        log_scale: Log standard deviations, broadcastable to `x` (per pixel, per channel or one scalar).

    Returns:
        log p(x) per example, [B].
    """
    mean = tf.convert_to_tensor(mean)
    x, log_scale = tf.cast(x, mean.dtype), tf.cast(log_scale, mean.dtype)
    standardized = (x - mean) * tf.exp(-log_scale)
    return _sum_per_example(-0.5 * tf.square(standardized) - log_scale - 0.5 * LOG_2PI)


def discretized_logistic_log_likelihood(x: tf.Tensor, mean: tf.Tensor, log_scale: tf.Tensor,
                                        bins: int = 256) -> tf.Tensor:
    """log P(x) of a logistic(mean, exp(log_scale)) discretized into `bins` values on [0, 1], summed over every axis
    but the first (Salimans et al. 2017, PixelCNN++, Eq. 2 with one mixture component).

    Pixel values are the grid points k / (bins - 1); each owns the interval of half-width 1 / (2 (bins - 1)) around
    it, and the two edge values own everything beyond (so the probabilities of the `bins` values sum to 1):
    P(0) = F(0 + h), P(1) = 1 - F(1 - h), else P(x) = F(x + h) - F(x - h), with F the logistic CDF. Computed in log
    space; where the interval's mass is below 1e-5 (a very sharp logistic) the density at the centre times the bin
    width is used instead, as in PixelCNN++.

    Args:
        x: Targets on the grid k / (bins - 1) in [0, 1] (8-bit images / 255 for the default 256 bins), [B, ...].
        mean: Logistic locations, the same shape as `x`.
        log_scale: Log scales, broadcastable to `x`.
        bins: Number of discrete values (256 for 8-bit images).

    Returns:
        log P(x) per example, in nats, [B].
    """
    mean = tf.convert_to_tensor(mean)
    x, log_scale = tf.cast(x, mean.dtype), tf.cast(log_scale, mean.dtype)
    half = 0.5 / (bins - 1)
    inv_scale = tf.exp(-log_scale)
    upper, lower = inv_scale * (x - mean + half), inv_scale * (x - mean - half)
    log_cdf_upper = upper - tf.nn.softplus(upper)  # log F(x + h)
    log_survival_lower = -tf.nn.softplus(lower)  # log (1 - F(x - h))
    mass = tf.sigmoid(upper) - tf.sigmoid(lower)
    centre = inv_scale * (x - mean)
    log_density_centre = centre - log_scale - 2.0 * tf.nn.softplus(centre)  # log of the logistic pdf at x
    interior = tf.where(mass > 1e-5, tf.math.log(tf.maximum(mass, 1e-12)),
                        log_density_centre + math.log(2.0 * half))
    log_p = tf.where(x < half, log_cdf_upper, tf.where(x > 1.0 - half, log_survival_lower, interior))
    return _sum_per_example(log_p)


def bits_per_dim(log_likelihood_nats: tf.Tensor, dims: int) -> tf.Tensor:
    """Convert a log-likelihood per example in nats into bits per dimension: -log p(x) / (dims * ln 2).

    For a discrete likelihood (Bernoulli on binary pixels, discretized logistic on 8-bit pixels) this is the usual
    figure. For a density on images scaled from 8 bits to [0, 1] (Gaussian), subtract dims * log(255) nats from the
    log-density first (the change of variables x = y / 255 from 0..255 to [0, 1]: p_Y(y) = p_X(y / 255) / 255 per
    dimension) to compare it with discrete models.

    Args:
        log_likelihood_nats: log p(x) per example (or its mean), nats.
        dims: Dimensions per example (H * W * C).

    Returns:
        Bits per dimension (positive; lower is better).
    """
    return -tf.cast(log_likelihood_nats, tf.float64) / (dims * math.log(2.0))


#: Floors of the learned log-scales. The discretized logistic's is PixelCNN++'s. The Gaussian's is one grey level
#: (1/255): a density on [0, 1] evaluated at the 256 grid points would otherwise grow without bound on pixels that
#: are always 0 (MNIST's border), which no discrete likelihood can.
LOGISTIC_LOG_SCALE_MIN = -7.0
GAUSSIAN_LOG_SCALE_MIN = -math.log(255.0)
LOG_SCALE_MAX = 5.0


def location_and_log_scale(params: tf.Tensor, log_scale_min: float) -> Sequence[tf.Tensor]:
    """Split decoder output [B, H, W, 2C] into a location in (0, 1) (sigmoid of the first C channels) and a log-scale
    (the last C channels, clipped to [log_scale_min, LOG_SCALE_MAX])."""
    raw_location, raw_log_scale = tf.split(params, 2, axis=-1)
    return tf.sigmoid(raw_location), tf.clip_by_value(raw_log_scale, log_scale_min, LOG_SCALE_MAX)


@dataclass(frozen=True)
class Likelihood:
    """A decoder likelihood p(x | z), by name.

    Args:
        name: Its name in `LIKELIHOODS`.
        params: Decoder output channels per image channel.
        log_prob: (x [B, H, W, C] in [0, 1], decoder output [B, H, W, params*C]) -> log p(x|z) per example [B].
        mean: Decoder output -> the image it predicts, [B, H, W, C] in [0, 1] (for pictures and reconstructions).
        discrete: Whether log_prob is the log-probability of 8-bit (or binary) pixel values, so that bits/dim follow
            directly; for the Gaussian (a density) they need the change of scale (`bits_per_dim`).
    """
    name: str
    params: int
    log_prob: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    mean: Callable[[tf.Tensor], tf.Tensor]
    discrete: bool


def _gaussian(x: tf.Tensor, out: tf.Tensor) -> tf.Tensor:
    return gaussian_log_likelihood(x, *location_and_log_scale(out, GAUSSIAN_LOG_SCALE_MIN))


def _logistic(x: tf.Tensor, out: tf.Tensor) -> tf.Tensor:
    return discretized_logistic_log_likelihood(x, *location_and_log_scale(out, LOGISTIC_LOG_SCALE_MIN))


def _location(out: tf.Tensor) -> tf.Tensor:
    return tf.sigmoid(tf.split(out, 2, axis=-1)[0])


LIKELIHOODS: Dict[str, Likelihood] = {
    "bernoulli": Likelihood("bernoulli", 1, bernoulli_log_likelihood, tf.sigmoid, True),
    "gaussian": Likelihood("gaussian", 2, _gaussian, _location, False),
    "discretized_logistic": Likelihood("discretized_logistic", 2, _logistic, _location, True),
}
assert tuple(LIKELIHOODS) == LIKELIHOOD_NAMES, "ops.names.LIKELIHOOD_NAMES must list LIKELIHOODS in order"


def get_likelihood(name: Optional[str] = None) -> Likelihood:
    """The likelihood called `name` (None: `ops.names.DEFAULT_LIKELIHOOD`).

    Raises:
        ValueError: If there is none of that name.
    """
    name = DEFAULT_LIKELIHOOD if name is None else name
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]


def check_decoder_output(likelihood: Likelihood, x_shape: tf.TensorShape, out_shape: tf.TensorShape,
                         where: str) -> None:
    """Raise if a decoder output of `out_shape` cannot parameterize `likelihood` over images of `x_shape`.

    Raises:
        ValueError: Naming `where`, both shapes and the channels expected.
    """
    x_shape, out_shape = tf.TensorShape(x_shape), tf.TensorShape(out_shape)
    if x_shape.rank is None or out_shape.rank is None:
        return
    channels = x_shape[-1]
    expected = x_shape[:-1].concatenate([None if channels is None else channels * likelihood.params])
    if not expected.is_compatible_with(out_shape):
        raise ValueError(f"{where}: the {likelihood.name} likelihood needs a decoder output of {expected} "
                         f"({likelihood.params} value(s) per image channel) for images {x_shape}, got {out_shape}")


def log_importance_weights(log_px: tf.Tensor, z: tf.Tensor, mean: tf.Tensor, logvar: tf.Tensor,
                           log_pz: Optional[tf.Tensor] = None, log_qz: Optional[tf.Tensor] = None) -> tf.Tensor:
    """log p(x, z) - log q(z|x) = log p(x|z) - (log q(z|x) - log p(z)): the log weight of each sample z (the prior's
    `log_pz`, else the standard normal's; the flow's `log_qz`, else the diagonal Gaussian's)."""
    return log_px - monte_carlo_kl(z, mean, logvar, log_pz, log_qz)


def kl_to_prior(mean: tf.Tensor, logvar: tf.Tensor, z: Optional[tf.Tensor] = None, log_pz: Optional[tf.Tensor] = None,
                log_qz: Optional[tf.Tensor] = None) -> tf.Tensor:
    """KL(q(z|x) || p(z)) with as much in closed form as the prior and posterior allow: exact for the standard normal
    and a Gaussian posterior (`log_pz` and `log_qz` None: `kl_to_standard_normal`); for another prior, E_q[log q] exact
    (`gaussian_negative_entropy`) minus the one-sample log p(z) at the sample `log_pz` was taken at; with a flow's
    posterior (`log_qz` given) nothing is closed-form: the one-sample `monte_carlo_kl` at the sample `z`."""
    if log_qz is not None:
        return monte_carlo_kl(z, mean, logvar, log_pz, log_qz)
    if log_pz is None:
        return kl_to_standard_normal(mean, logvar)
    return gaussian_negative_entropy(logvar) - tf.cast(log_pz, tf.float32)


def bits_per_dim_of(likelihood: str, log_likelihood_nats: float, dims: int, binarized: bool) -> Optional[float]:
    """Bits per dimension of a log-likelihood (or a bound on it) under `likelihood`, or None where there are none.

    Discrete likelihoods convert directly (`bits_per_dim`). The Gaussian is a density on [0, 1]: the change of scale
    to 0..255 subtracts log(255) nats per dimension first (`bits_per_dim`'s note). A Bernoulli on grey levels is a
    cross-entropy, not a likelihood of the data: None.
    """
    if likelihood == "bernoulli" and not binarized:
        return None
    shift = 0.0 if get_likelihood(likelihood).discrete else dims * math.log(255.0)
    return float(bits_per_dim(log_likelihood_nats - shift, dims).numpy())
