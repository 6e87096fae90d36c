"""Densities written out in NumPy (float64), independent of `ops.densities`, for the tests to compare against."""
import math

import numpy as np


def np_log_normal(z, mean, logvar):
    """log N(z; mean, diag(exp(logvar))), summed over the last axis."""
    z, mean, logvar = (np.asarray(v, np.float64) for v in (z, mean, logvar))
    return np.sum(-0.5 * (math.log(2 * math.pi) + logvar + (z - mean)**2 / np.exp(logvar)), axis=-1)


def np_bernoulli(x, logits):
    """log p(x | logits) of a Bernoulli per pixel, summed per example: x log s + (1 - x) log(1 - s), s = sigmoid."""
    x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    return np.sum((x * logits - np.logaddexp(0, logits)).reshape(len(x), -1), axis=1)


def np_mixture(z, means, logvars):
    """log (1/C sum_c N(z; means_c, logvars_c)) by a max-shifted sum, for z [..., L]."""
    per = np.stack([np_log_normal(z, m, v) for m, v in zip(means, logvars)], axis=-1)  # [..., C]
    top = per.max(axis=-1, keepdims=True)
    return (top + np.log(np.mean(np.exp(per - top), axis=-1, keepdims=True)))[..., 0]
