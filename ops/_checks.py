"""Trace-time checks shared by the ops: they raise before training starts, with one clear line."""
from typing import Optional, Tuple, Union

import tensorflow as tf


def positive_int(op_name: str, name: str, value: object) -> int:
    """Return `value` if it is a positive integer (not a bool).

    Raises:
        ValueError: "OP: NAME must be a positive integer, got VALUE".
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{op_name}: {name} must be a positive integer, got {value!r}")
    return value


def require_tf(op_name: str, framework: str) -> None:
    """Raise if an op that is written in TensorFlow is built for another framework.

    Args:
        op_name: The class name of the op, for the message.
        framework: The framework FastEstimator is building the op for.

    Raises:
        ValueError: If `framework` is not "tf".
    """
    if framework != "tf":
        raise ValueError(f"{op_name} is TensorFlow-only: unrecognized framework '{framework}' (expected 'tf')")


def require_image_batch(op_name: str, key: str, x: tf.Tensor,
                        channels: Union[None, int, Tuple[int, ...]] = 1) -> None:
    """Check that `x` is a batch of images: [B, H, W] or [B, H, W, channels] (any channels when None).

    Only the static rank and channel count are checked, so any batch size (including a dynamic one) passes.

    Args:
        op_name: The class name of the op, for the message.
        key: The data key `x` was read from, for the message.
        x: The tensor to check.
        channels: The allowed size(s) of the last axis when `x` has rank 4 (None: any).

    Raises:
        ValueError: If the rank is not 3 or 4, or the channel axis has the wrong size.
    """
    rank = x.shape.rank
    allowed = (channels, ) if isinstance(channels, int) else channels
    if rank not in (3, 4) or (rank == 4 and allowed is not None and x.shape[-1] not in (None, ) + tuple(allowed)):
        shown = "C" if allowed is None else " or ".join(str(c) for c in allowed)
        raise ValueError(f"{op_name}: input '{key}' must be a batch of images shaped [B, H, W] or "
                         f"[B, H, W, {shown}], got shape {x.shape}")
