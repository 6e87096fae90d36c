"""The shapes the model families take, checked without TensorFlow (so `resolve` refuses images a family cannot take
before TensorFlow starts): default widths, latent size, image shape, and the conv family's depth.

    check_family("conv", latent_dim=2, widths=None, image_shape=(1, 1, 1))   # ValueError: too small for 2 convs
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

from pipeline_vae import settings
from pipeline_vae.run_config import MNIST_SHAPE

IMAGE_SHAPE: Tuple[int, int, int] = MNIST_SHAPE
LATENT_DIM: int = settings.default("latent_dim")
CONV_WIDTHS: Tuple[int, ...] = (32, 64)
MLP_WIDTHS: Tuple[int, ...] = (512, 256)
#: Burda et al.'s (2016) one-stochastic-layer MLP: two hidden layers of 200 tanh units.
TANH_MLP_WIDTHS: Tuple[int, ...] = (200, 200)


def _check_latent_dim(latent_dim: int) -> int:
    return settings.check("latent_dim", latent_dim)


def _check_widths(widths: Sequence[int]) -> Tuple[int, ...]:
    if widths is None:  # None means "the family's default" one level up; a builder needs the widths themselves
        raise ValueError("widths must be a list of one or more positive integers, got None")
    return tuple(settings.check("widths", widths))


def check_image_shape(image_shape: Sequence[int]) -> Tuple[int, int, int]:
    """Return `image_shape` as (H, W, C) after checking it is three positive integers.

    Raises:
        ValueError: If it is not.
    """
    ok = isinstance(image_shape, (list, tuple)) and len(image_shape) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in image_shape)
    if not ok:
        raise ValueError(f"image_shape must be three positive integers (height, width, channels), got {image_shape!r}")
    return tuple(image_shape)


def _conv_out(size: int) -> int:
    """Spatial size after a 3x3 stride-2 'valid' convolution."""
    return (size - 3) // 2 + 1


def _check_conv_depth(image_shape: Tuple[int, int, int], widths: Tuple[int, ...]) -> None:
    """Raise if a 3x3 stride-2 'valid' convolution per width does not fit the image (each needs 3 pixels)."""
    for axis, original in (("height", image_shape[0]), ("width", image_shape[1])):
        size = original
        for _ in widths:
            if size < 3:
                raise ValueError(f"image {axis} {original} is too small for {len(widths)} stride-2 convolutions "
                                 f"(widths {list(widths)}); use fewer widths")
            size = _conv_out(size)


#: Each family's default widths and its extra shape check (`pipeline_vae.models.MODELS` builds them).
FAMILY_WIDTHS: Dict[str, Tuple[int, ...]] = {"conv": CONV_WIDTHS, "mlp": MLP_WIDTHS,
                                              "mlp_tanh": TANH_MLP_WIDTHS}
SHAPE_CHECKS: Dict[str, Callable[[Tuple[int, int, int], Tuple[int, ...]], None]] = {"conv": _check_conv_depth}


def check_family(model: str, latent_dim: int, widths: Optional[Sequence[int]],
                 image_shape: Sequence[int]) -> None:
    """Raise the ValueError building family `model` for these settings would (`ModelFamily.check`), without
    TensorFlow.

    Raises:
        ValueError: If the family is unknown, or a setting does not fit it or the images.
    """
    if model not in FAMILY_WIDTHS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(sorted(FAMILY_WIDTHS))}")
    _check_latent_dim(latent_dim)
    image_shape = check_image_shape(image_shape)
    widths = _check_widths(FAMILY_WIDTHS[model] if widths is None else widths)
    if model in SHAPE_CHECKS:
        SHAPE_CHECKS[model](image_shape, widths)
