"""Decoding image files (PNG, JPEG, BMP) with TensorFlow: one file to a uint8 [H, W, C] tensor of the data's shape,
or a list of files to one array. The training pipeline (`pipeline_vae.data.pipeline`) maps `decode_image` over a
folder's files; `ImageData.test_images` uses `decode_files` for evaluation and plots.
"""
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Convert a decoded image with 1-4 channels (grey, grey+alpha, RGB, RGBA) to `channels` (1 or 3)."""
    have = tf.shape(image)[-1]
    if channels == 1:
        return tf.cond(have >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: image[..., :1])
    return tf.cond(have >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3]))


def decode_image(path: tf.Tensor, image_shape: Tuple[int, int, int], resize: bool) -> tf.Tensor:
    """Read and decode one image file (PNG, JPEG, BMP) to uint8 [H, W, C] of `image_shape`.

    Args:
        path: The file path (a string tensor).
        image_shape: (H, W, C) wanted.
        resize: Resize to H x W (area-averaging when shrinking); else the file must already be H x W.
    """
    image = tf.io.decode_image(tf.io.read_file(path), channels=0, dtype=tf.uint8, expand_animations=False)
    image = _to_channels(image, image_shape[2])
    if resize:
        image = tf.image.resize(image, image_shape[:2], method="area", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(image, image_shape)


def decode_files(files: Sequence[str], image_shape: Tuple[int, int, int], resize: bool) -> np.ndarray:
    """Decode image files to one uint8 array [N, H, W, C] (for evaluation and plots)."""
    dataset = tf.data.Dataset.from_tensor_slices(list(files)).map(
        lambda path: decode_image(path, image_shape, resize), num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    batches = [batch.numpy() for batch in dataset]
    return np.concatenate(batches) if batches else np.zeros((0, ) + tuple(image_shape), np.uint8)
