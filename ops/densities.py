"""Log-densities shared by the losses and the metrics."""
import math

import tensorflow as tf

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
