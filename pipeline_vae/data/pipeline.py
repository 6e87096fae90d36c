"""tf.data for an `ImageData`: batches of uint8 images {"x": [B, H, W, C]}, the Network rescales them.

Arrays are sliced from memory; files are read and decoded in parallel (`num_parallel_calls=AUTOTUNE`), converted to
the data's channels and resized if the source asked for it, so a folder of any size trains without a copy.
"""
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from pipeline_vae.data.image_data import ImageData, Split


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


def split_dataset(split: Split, image_shape: Tuple[int, int, int], resize: bool = False,
                  shuffle: bool = False) -> tf.data.Dataset:
    """One example per element: {"x": uint8 [H, W, C]}, not batched; reshuffled every epoch if `shuffle`. For files
    only the file names are shuffled, before decoding, so the shuffle buffer holds strings, not images."""
    if split.x is not None:
        arrays = tf.data.Dataset.from_tensor_slices({"x": split.x})
        return arrays.shuffle(len(split)) if shuffle else arrays
    files = tf.data.Dataset.from_tensor_slices(list(split.files))
    files = files.shuffle(len(split)) if shuffle else files
    return files.map(lambda path: {"x": decode_image(path, image_shape, resize)}, num_parallel_calls=tf.data.AUTOTUNE)


def datasets(data: ImageData, batch_size: int) -> Tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training set (reshuffled every epoch, with TensorFlow's global seed: `fe.enable_deterministic` sets it in
    a seeded run) and the test set, batched and prefetched."""
    resize = data.source.image_size is not None
    train = split_dataset(data.train, data.image_shape, resize, shuffle=True)
    test = split_dataset(data.test, data.image_shape, resize)
    return (train.batch(batch_size).prefetch(tf.data.AUTOTUNE), test.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def decode_files(files: Sequence[str], image_shape: Tuple[int, int, int], resize: bool) -> np.ndarray:
    """Decode image files to one uint8 array [N, H, W, C] (for evaluation and plots)."""
    dataset = split_dataset(Split(files=tuple(files)), image_shape, resize).batch(256)
    batches = [batch["x"].numpy() for batch in dataset]
    return np.concatenate(batches) if batches else np.zeros((0, ) + tuple(image_shape), np.uint8)
