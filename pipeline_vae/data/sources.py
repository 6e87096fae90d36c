"""The sources `--data` (CLI) and `data=` (library) accept, each read into an `ImageData`.

    mnist                  the real MNIST, verified and cached offline (`pipeline_vae.data.mnist`); the default
    fashion_mnist, cifar10 Keras' downloadable sets, fetched once (`pipeline-vae data --data NAME`, needs internet)
                           into the project's cache beside MNIST; offline, one line says how to pass the files
    FILE.npz               x_train, x_test (optional y_train, y_test), or one x (optional y) split by test_fraction
    FOLDER                 image files (.png, .jpg, .jpeg, .bmp), searched recursively; class subfolders become
                           labels; train/ and test/ subfolders are the splits, else test_fraction is held out

Only the file headers are read here (in parallel threads), to check every file and learn the images' size and
colour; the pixels are decoded by tf.data while training.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from pipeline_vae.data.image_data import DataSource, ImageData, Split, to_uint8_images
from pipeline_vae.atomic import atomic_path
from pipeline_vae.data.mnist import EXPECTED_SHAPES, MNIST, DataError, default_cache_path, load_mnist, verify_mnist

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
#: Keras' downloadable image sets this toolkit can read by name.
KERAS_SETS = ("fashion_mnist", "cifar10")
#: PIL modes that are grey (one channel); anything else becomes RGB.
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
EXPECTED_DATA = ("'mnist', " + ", ".join(KERAS_SETS) + ", an .npz file with x_train/x_test (or x), or a folder of "
                 "images")


def load_data(data: Union[None, str, DataSource, MNIST, ImageData] = None, fetch: bool = True,
              log: Optional[Callable[[str], None]] = None) -> ImageData:
    """Read any supported source into a checked `ImageData`.

    Args:
        data: None or "mnist" (MNIST: env `PIPELINE_VAE_DATA`, the cache, else fetched), a Keras set name, a `.npz`
            path, a folder path, a `DataSource` (those plus resizing, channels and the split), an `MNIST`, or an
            `ImageData` (returned as is).
        fetch: Whether MNIST and the Keras sets may be downloaded into the project's cache when they are not there
            yet (`get_estimator` passes False: it has no side effects outside its save_dir).
        log: Where fetch progress goes (default print).

    Returns:
        The data set.

    Raises:
        DataError: If the source is unknown, missing, unreadable or not valid images (one line naming what and why).
    """
    if isinstance(data, ImageData):
        return data
    if isinstance(data, MNIST):
        return from_mnist(data)
    source = data if isinstance(data, DataSource) else DataSource(data="mnist" if data is None else data)
    try:
        source.check()
    except ValueError as err:
        raise DataError(str(err)) from None
    name = source.data
    if not isinstance(name, str) or not name:
        raise DataError(f"data: expected {EXPECTED_DATA}, got {name!r}")
    if name == "mnist":
        found = _adjust(from_mnist(load_mnist(fetch=fetch, **({"log": log} if log else {}))), source)
    elif name in KERAS_SETS:
        found = read_keras(source, fetch=fetch, log=log or print)
    elif name == "arrays":
        raise DataError("data: 'arrays' were handed over in memory and cannot be loaded again; pass --data (or data=) "
                        "with the images to use")
    elif os.path.isdir(name):  # recorded as an absolute path: `evaluate` may run from another folder
        found = read_folder(replace(source, data=os.path.abspath(name)))
    elif os.path.isfile(name):
        if not name.lower().endswith(".npz"):
            raise DataError(f"data: {name} is not an .npz file; expected {EXPECTED_DATA}")
        found = read_npz_images(replace(source, data=os.path.abspath(name)))
    elif os.sep in name or "." in name:
        raise DataError(f"data: {name} does not exist; expected {EXPECTED_DATA}")
    else:
        raise DataError(f"data: {name} is not a known data set, file or folder; expected {EXPECTED_DATA}")
    return fix_binarization(hold_out_validation(found), source.fixed_binarization)


def hold_out_validation(data: ImageData) -> ImageData:
    """`data` with `data.source.validation_fraction` of its training images moved to a validation split (seeded by
    `split_seed`, as `_split` draws a test split); unchanged without a fraction.

    Raises:
        DataError: If the fraction leaves no validation or no training images.
    """
    fraction = data.source.validation_fraction
    if fraction is None:
        return data
    train_idx, val_idx = _split(len(data.train), fraction, data.source.split_seed,
                                f"the training split of {data.description}", "validation_fraction")
    take = (lambda values, idx: None if values is None else  # files are a tuple, arrays are indexed
            (tuple(values[i] for i in idx) if isinstance(values, tuple) else values[idx]))
    split = data.train
    train = Split(x=take(split.x, train_idx), files=take(split.files, train_idx), y=take(split.y, train_idx))
    validation = Split(x=take(split.x, val_idx), files=take(split.files, val_idx), y=take(split.y, val_idx))
    return replace(data, train=train, validation=validation)


def bernoulli_draw(x: np.ndarray, seed: int) -> np.ndarray:
    """One fixed binarization of uint8 images: each pixel becomes 255 with probability (its value / 255), else 0,
    drawn as `np.random.default_rng(seed).random(x.shape) < x / 255`."""
    return np.where(np.random.default_rng(seed).random(x.shape) < x / 255.0, 255, 0).astype(np.uint8)


def fix_binarization(data: ImageData, seed: Optional[int]) -> ImageData:
    """`data` with its test images (draw seeded `seed`) and validation images (seeded `seed + 1`) binarized once by
    `bernoulli_draw`: the fixed evaluation images of dynamically binarized MNIST. The training images stay grey.
    Unchanged for `seed` None.

    Raises:
        DataError: If the images are files, not arrays in memory.
    """
    if seed is None:
        return data
    if not data.in_memory:
        raise DataError("fixed_binarization: needs images in memory (MNIST, a Keras set or an .npz), not a folder of "
                        "files")
    test = replace(data.test, x=bernoulli_draw(data.test.x, seed))
    validation = (None if data.validation is None else
                  replace(data.validation, x=bernoulli_draw(data.validation.x, seed + 1)))
    return replace(data, test=test, validation=validation)


def from_mnist(data: MNIST, source: Optional[DataSource] = None) -> ImageData:
    """Wrap verified (or subset) MNIST arrays as `ImageData` of kind "mnist" (binarized, Bernoulli by default)."""
    found = ImageData.from_arrays(data.x_train, data.x_test, data.y_train, data.y_test, description=f"MNIST "
                                  f"({data.source})", source=source or DataSource("mnist"), kind="mnist")
    return replace(found, class_names=tuple(str(i) for i in range(10)))


def _adjust(data: ImageData, source: DataSource) -> ImageData:
    """Apply a source's `channels` to in-memory arrays (resizing is for folders only)."""
    if source.image_size is not None and tuple(source.image_size) != data.image_shape[:2]:
        raise DataError(f"image_size: resizing is for folders of image files; {data.description} is "
                        f"{data.image_shape[0]}x{data.image_shape[1]} (resize the arrays yourself, or omit it)")
    if source.channels is None or source.channels == data.image_shape[2]:
        return replace(data, source=source)
    convert = _to_grey if source.channels == 1 else _to_rgb
    train = Split(x=convert(data.train.x), y=data.train.y)
    test = Split(x=convert(data.test.x), y=data.test.y)
    shape = data.image_shape[:2] + (source.channels, )
    return replace(data, train=train, test=test, image_shape=shape, source=source)


def _to_grey(x: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's "L" and TensorFlow's rgb_to_grayscale compute it."""
    return np.round(x.astype(np.float32) @ np.array([0.2989, 0.587, 0.114], np.float32))[..., None].astype(np.uint8)


def _to_rgb(x: np.ndarray) -> np.ndarray:
    return np.repeat(x, 3, axis=-1)


def _split(n: int, fraction: float, seed: int, what: str,
           name: str = "test_fraction") -> Tuple[np.ndarray, np.ndarray]:
    """Seeded indices for `n` items holding out `fraction` of them: (kept, held out), the held-out ones in the seeded
    random order, so the first test images, which plots show, are a sample of every class."""
    n_test = int(round(n * fraction))
    held = "test" if name == "test_fraction" else "validation"
    if n_test < 1 or n_test >= n:
        raise DataError(f"{name}: {what} has {n} images; holding out {fraction:g} of them leaves "
                        f"{f'an empty {held} split' if n_test < 1 else 'no training images'}; use a "
                        f"{'larger' if n_test < 1 else 'smaller'} --{name.replace('_', '-')} or more images")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), order[:n_test]


def read_npz_images(source: DataSource) -> ImageData:
    """Read a `.npz` of images: `x_train` and `x_test` (optional `y_train`, `y_test`), or one `x` (optional `y`) that
    is split by `source.test_fraction` with `source.split_seed`. A file that holds the real MNIST is MNIST.

    Raises:
        DataError: If the file is unreadable, has no known keys, or its arrays are not valid images or labels.
    """
    path = source.data
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as err:  # np.load raises zipfile/OSError/ValueError/EOFError for damaged files
        raise DataError(f"data file {path} is not a readable .npz ({type(err).__name__}: {err})") from None
    keys = set(arrays)
    if {"x_train", "x_test"} <= keys:
        if all(arrays.get(k) is not None and arrays[k].shape == EXPECTED_SHAPES[k] for k in EXPECTED_SHAPES):
            try:
                return _adjust(from_mnist(verify_mnist(arrays, source=path), source), source)
            except DataError:
                pass  # MNIST-shaped but not MNIST: read it as any other images
        found = ImageData.from_arrays(arrays["x_train"], arrays["x_test"], arrays.get("y_train"), arrays.get("y_test"),
                                      description=path, source=source, kind="npz")
    elif "x" in keys:
        x = to_uint8_images(arrays["x"], "x")
        y = arrays.get("y")
        if y is not None and (not isinstance(y, np.ndarray) or len(y) != len(x)):
            raise DataError(f"y: {len(y)} labels for {len(x)} images in {path}; expected one label per image")
        train, test = _split(len(x), source.test_fraction, source.split_seed, path)
        found = ImageData.from_arrays(x[train], x[test], None if y is None else y[train],
                                      None if y is None else y[test], description=path, source=source, kind="npz")
    else:
        raise DataError(f"data file {path} has keys {', '.join(sorted(keys)) or '(none)'}; expected x_train and x_test "
                        "(optional y_train, y_test), or x (optional y)")
    return _adjust(found, source)


def keras_cache_path(name: str) -> str:
    """Where a Keras set is cached once fetched: beside MNIST's cache, `<cache dir>/pipeline_vae/<name>.npz`."""
    return os.path.join(os.path.dirname(default_cache_path()), f"{name}.npz")


def read_keras(source: DataSource, fetch: bool = True, log: Callable[[str], None] = print) -> ImageData:
    """One of Keras' downloadable sets by name, from the project's cache; fetched into it first (needs internet)
    when `fetch`.

    Raises:
        DataError: If it is not cached and may not be fetched, or the download fails (saying how to pass the files
            instead).
    """
    path = keras_cache_path(source.data)
    if not os.path.isfile(path):
        if not fetch:
            raise DataError(f"data: {source.data} is not fetched yet; run `pipeline-vae data --data {source.data}` "
                            "(needs internet), or pass its arrays as an .npz with --data FILE.npz")
        import tensorflow as tf  # heavy import, only on this path
        try:
            (x_train, y_train), (x_test, y_test) = getattr(tf.keras.datasets, source.data).load_data()
        except Exception as err:  # urllib/OSError/Exception from keras' get_file
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise DataError(f"data: could not download {source.data} with tf.keras.datasets ({first}); offline, save "
                            "its arrays elsewhere as an .npz with x_train and x_test (optional y_train, y_test) and "
                            "pass --data FILE.npz") from None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        log(f"pipeline-vae data: cached {source.data} from tf.keras.datasets at {path}")
    found = read_npz_images(DataSource(path))
    return replace(found, source=source, kind="keras", description=f"{source.data} ({path})")


def list_images(folder: str) -> List[str]:
    """Image files under `folder` (recursively, hidden entries skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files)
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def _header(path: str) -> Tuple[int, int, str]:
    """(height, width, mode) of an image file, checking that the file is a complete image."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            size, mode = image.size, image.mode
            image.verify()  # walks the file's structure (chunks, CRCs) without decoding the pixels
    except Exception as err:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, struct.error, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"data: {path} is not a readable image ({first})") from None
    return size[1], size[0], mode


def _labels(files: Sequence[str], root: str) -> Tuple[Optional[np.ndarray], Optional[Tuple[str, ...]]]:
    """Labels from first-level class subfolders of `root` (when every file is in one and there are at least two)."""
    parts = [os.path.relpath(f, root).split(os.sep) for f in files]
    if any(len(p) < 2 for p in parts):
        return None, None
    names = tuple(sorted({p[0] for p in parts}))
    if len(names) < 2:
        return None, None
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[p[0]] for p in parts], np.int64), names


def read_folder(source: DataSource) -> ImageData:
    """A folder of image files: every file checked (header and structure) in parallel threads; pixels are decoded
    later by tf.data.

    Raises:
        DataError: If the folder has no images, a file is unreadable or corrupt (named), sizes differ without
            `image_size`, or the test split would be empty.
    """
    folder = source.data
    splits = {name: os.path.join(folder, name) for name in ("train", "test")}
    own_split = all(os.path.isdir(path) for path in splits.values())
    files = {name: list_images(path) for name, path in splits.items()} if own_split else {"all": list_images(folder)}
    for name, found in files.items():
        if not found:
            where = splits[name] if own_split else folder
            raise DataError(f"data: folder {where} holds no image files ({', '.join(IMAGE_EXTENSIONS)}), searched "
                            "recursively")
    every = [f for found in files.values() for f in found]
    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 4)) as pool:
        headers = list(pool.map(_header, every))
    sizes: Dict[Tuple[int, int], str] = {}
    for path, (h, w, _) in zip(every, headers):
        sizes.setdefault((h, w), path)
    if source.image_size is None and len(sizes) > 1:
        (a, path_a), (b, path_b) = list(sizes.items())[:2]
        raise DataError(f"data: images in {folder} differ in size ({path_a} is {a[0]}x{a[1]}, {path_b} is "
                        f"{b[0]}x{b[1]}); pass --image-size H W (image_size=(H, W)) to resize them all")
    height, width = tuple(source.image_size) if source.image_size is not None else next(iter(sizes))
    channels = source.channels or (1 if all(mode in GREY_MODES for _, _, mode in headers) else 3)
    if own_split:
        train_files, test_files = files["train"], files["test"]
        y_train, names = _labels(train_files, splits["train"])
        y_test, test_names = _labels(test_files, splits["test"])
        if names != test_names:
            y_train = y_test = names = None
    else:
        y_all, names = _labels(every, folder)
        train_idx, test_idx = _split(len(every), source.test_fraction, source.split_seed, f"folder {folder}")
        train_files, test_files = [every[i] for i in train_idx], [every[i] for i in test_idx]
        y_train, y_test = (None, None) if y_all is None else (y_all[train_idx], y_all[test_idx])
    return ImageData(Split(files=tuple(train_files), y=y_train), Split(files=tuple(test_files), y=y_test),
                     (int(height), int(width), channels), source=source, kind="folder", binary=False,
                     description=f"folder {folder}", class_names=names)
