"""Reference likelihoods that need no latent code, to read a VAE's bits/dim against (docs/ablations/README.md).

A VAE's bound is only informative next to what a model without z achieves on the same data: one independent
distribution per pixel, fitted by counting the training images. `pixel_histogram_log_likelihood` is that model for
8-bit pixels (a smoothed histogram over the 256 values of each pixel), `pixel_bernoulli_log_likelihood` for pixels
binarized at a threshold. Both are exact log-probabilities of the test images, so their bits/dim compare directly
with a discrete likelihood's (`ops.densities.bits_per_dim`).

`logistic_level_log_likelihood` reads a trained discretized logistic decoder on the grey levels the data actually
uses: data with fewer than 256 levels (scikit-learn's digits have 17) pays, under a 256-bin likelihood, for mass on
values that never occur; summing the logistic's mass over each used level's cell instead shows how much.
"""
from typing import Tuple

import numpy as np


def _check_uint8_pair(train: np.ndarray, test: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    for name, images in (("train", train), ("test", test)):
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim < 2 or len(images) == 0:
            raise ValueError(f"{name} must be a non-empty uint8 array of images [N, ...], got "
                             f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}")
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test images must have the same size, got {train.shape[1]} and "
                         f"{test.shape[1]} values per image")
    return train, test


def pixel_histogram_log_likelihood(train: np.ndarray, test: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """log p(x) of each test image under independent per-pixel histograms of the training images over 0..255.

    p(pixel j = v) = (count_j(v) + alpha) / (N + 256 alpha), counted over the N training images (additive smoothing,
    so a value never seen in training keeps some mass).

    Args:
        train: Training images, uint8 [N, ...].
        test: Test images, uint8 [M, ...] of the same size.
        alpha: Pseudo-count per value (> 0).

    Returns:
        log p(x) per test image in nats, [M].

    Raises:
        ValueError: If the images are not uint8 arrays of one size or `alpha` is not positive.
    """
    train, test = _check_uint8_pair(train, test)
    if not alpha > 0:
        raise ValueError(f"alpha must be a positive pseudo-count, got {alpha!r}")
    pixels = np.arange(train.shape[1])
    counts = np.zeros((train.shape[1], 256))
    np.add.at(counts, (np.broadcast_to(pixels, train.shape), train), 1.0)
    log_p = np.log(counts + alpha) - np.log(len(train) + 256 * alpha)
    return log_p[pixels[None, :], test].sum(axis=1)


def pixel_bernoulli_log_likelihood(train: np.ndarray, test: np.ndarray, threshold: float = 0.5,
                                   alpha: float = 0.5) -> np.ndarray:
    """log p(x) of each test image, binarized (pixel / 255 > threshold), under independent per-pixel Bernoullis
    fitted to the training images binarized the same way: p_j = (ones_j + alpha) / (N + 2 alpha).

    Args:
        train: Training images, uint8 [N, ...].
        test: Test images, uint8 [M, ...] of the same size.
        threshold: Binarization threshold in (0, 1) (0.5: the evaluation's static binarization).
        alpha: Pseudo-count per outcome (> 0).

    Returns:
        log p(x) per test image in nats, [M].

    Raises:
        ValueError: If the images are not uint8 arrays of one size, or `threshold` / `alpha` are out of range.
    """
    train, test = _check_uint8_pair(train, test)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be a positive pseudo-count, got {alpha!r}")
    ones = (train / 255.0 > threshold).sum(axis=0)
    p = (ones + alpha) / (len(train) + 2 * alpha)
    x = test / 255.0 > threshold
    return np.where(x, np.log(p), np.log1p(-p)).sum(axis=1)


def _log_logistic_mass(location: np.ndarray, scale: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """log (F(upper) - F(lower)) for the logistic CDF F, stable where both ends lie in one tail."""
    def log_cdf(t):
        return -np.logaddexp(0.0, -t)
    a, b = (lower - location) / scale, (upper - location) / scale
    # F(b) - F(a) = F(b) (1 - exp(log F(a) - log F(b))); in the upper tail use the survival functions instead.
    upper_tail = a > 0
    a_, b_ = np.where(upper_tail, -b, a), np.where(upper_tail, -a, b)
    with np.errstate(divide="ignore"):
        return log_cdf(b_) + np.log(-np.expm1(np.minimum(log_cdf(a_) - log_cdf(b_), -1e-300)))


def logistic_level_log_likelihood(images: np.ndarray, location: np.ndarray, scale: np.ndarray,
                                  levels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """log p(x | z) of 8-bit images under per-pixel logistics, discretized into the 256 values and into `levels`.

    The 256-value reading is the discretized logistic of `ops.densities` (each value owns [v - 1/2, v + 1/2], the
    ends own the tails). The level reading lets each used grey level own the cell between the midpoints to its
    neighbours (the lowest and highest own the tails): a distribution over `levels` only.

    Args:
        images: Images, uint8 [N, ...], every value one of `levels`.
        location: Logistic locations in grey-level units (0..255), the shape of `images`.
        scale: Logistic scales in grey-level units (> 0), the shape of `images`.
        levels: The grey levels the data uses, uint8, at least 2.

    Returns:
        (log p over the 256 values, log p over `levels`) per image in nats, each [N].

    Raises:
        ValueError: If the shapes differ, location or scale are not finite (scale positive), `levels` are not integers
            in 0..255, fewer than 2 or miss an image value.
    """
    images = np.asarray(images)
    location, scale = np.asarray(location, np.float64), np.asarray(scale, np.float64)
    if images.dtype != np.uint8 or location.shape != images.shape or scale.shape != images.shape:
        raise ValueError(f"images must be uint8 with location and scale of their shape, got {images.dtype} "
                         f"{images.shape}, {location.shape}, {scale.shape}")
    if not (np.isfinite(location).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("location and scale must be finite, and scale positive")
    levels = np.asarray(levels)
    if levels.dtype.kind not in "iu" or levels.size and not (0 <= levels.min() and levels.max() <= 255):
        raise ValueError(f"levels must be integer grey levels in 0..255, got {levels.dtype} values")
    levels = np.unique(levels.astype(np.uint8))
    if len(levels) < 2 or not np.isin(images, levels).all():
        raise ValueError(f"levels must hold at least 2 values and every image value, got {len(levels)} levels")
    x = images.astype(np.float64)
    lower = np.where(x == 0, -np.inf, x - 0.5)
    upper = np.where(x == 255, np.inf, x + 0.5)
    cells = np.concatenate([[-np.inf], (levels[:-1] + levels[1:].astype(np.float64)) / 2.0, [np.inf]])
    index = np.searchsorted(levels, images)
    per_value = _log_logistic_mass(location, scale, lower, upper)
    per_level = _log_logistic_mass(location, scale, cells[index], cells[index + 1])
    n = len(images)
    return per_value.reshape(n, -1).sum(axis=1), per_level.reshape(n, -1).sum(axis=1)
