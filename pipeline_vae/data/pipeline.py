"""tf.data for an `ImageData`: batches of uint8 images {"x": [B, H, W, C]}, the Network rescales them.

Arrays are sliced from memory; files are read and decoded in parallel (`num_parallel_calls=AUTOTUNE`), converted to
the data's channels and resized if the source asked for it, so a folder of any size trains without a copy.
"""
from typing import Tuple

import tensorflow as tf

from pipeline_vae.data.decode import decode_image
from pipeline_vae.data.image_data import ImageData, Split


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
    a seeded run) and the set training evaluates (`ImageData.selection`: the validation split if there is one, else
    the test split), batched and prefetched."""
    resize = data.source.image_size is not None
    train = split_dataset(data.train, data.image_shape, resize, shuffle=True)
    test = split_dataset(data.selection, data.image_shape, resize)
    return (train.batch(batch_size).prefetch(tf.data.AUTOTUNE), test.batch(batch_size).prefetch(tf.data.AUTOTUNE))
