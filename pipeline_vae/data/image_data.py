"""ImageData: a data set of images as the rest of the toolkit sees it, whatever its source.

    data = ImageData.from_arrays(x_train, x_test)          # uint8 0..255 or float 0..1, [N, H, W] or [N, H, W, C]
    data.image_shape                                        # (H, W, C)
    data.test_images(100)                                   # uint8 [100, H, W, C]

A split holds either uint8 arrays in memory or a list of image files that tf.data decodes while training
(`pipeline_vae.data.pipeline`, with `pipeline_vae.data.decode`). Every array is checked here, once, with one line
naming the array and what was expected.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from pipeline_vae import settings
from pipeline_vae.data.mnist import DataError

EXPECTED_ARRAY = "images [N, H, W] or [N, H, W, C] (C = 1 or 3), uint8 in 0..255 or float in 0..1"


@dataclass(frozen=True)
class DataSource:
    """Where a data set comes from and how it is read: what a run's configuration records, so `evaluate`, `plot` and
    inference can load the same images again.

    Args:
        data: "mnist" (the verified offline MNIST), a Keras set name ("fashion_mnist", "cifar10"), a `.npz` file or a
            folder of images; "arrays" for arrays handed over in memory (these cannot be loaded again).
        image_size: (H, W) to resize every image to; None keeps the files' own (common) size. Folders only.
        channels: 1 (grey) or 3 (RGB) to convert every image to; None follows the data.
        test_fraction: The share of the images held out for testing when the source has no test split of its own.
        split_seed: Seed of that split (the same seed, the same split), and of the validation split.
        validation_fraction: The share of the training images held out as a validation split, on which the best
            models are selected and early stopping decides (None: no validation split; the test split is used).
        fixed_binarization: Seed of one fixed Bernoulli draw that binarizes the validation and test images (each
            pixel 255 with probability its intensity / 255, else 0), as the literature evaluates dynamically
            binarized MNIST; the training images stay grey (binarized afresh at every step by the `binarize` slot).
            None: the images as read.
    """
    data: str = "mnist"
    image_size: Optional[Tuple[int, int]] = None
    channels: Optional[int] = None
    test_fraction: float = 0.1
    split_seed: int = 0
    validation_fraction: Optional[float] = None
    fixed_binarization: Optional[int] = None

    def to_json(self) -> Dict[str, Any]:
        """A plain-JSON form; `from_json` reads it back. The validation and binarization fields are written only when
        set, so the record of a run from before they existed reads the same."""
        out = {"data": self.data, "image_size": None if self.image_size is None else list(self.image_size),
               "channels": self.channels, "test_fraction": self.test_fraction, "split_seed": self.split_seed}
        for name in OPTIONAL_FIELDS:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> "DataSource":
        """Read `to_json()` output back, checking every field.

        Raises:
            ValueError: If `obj` is not such a mapping.
        """
        if not isinstance(obj, dict) or not isinstance(obj.get("data"), str):
            raise ValueError(f"data must be a mapping with a 'data' string, got {obj!r}")
        unknown = set(obj) - {"data", "image_size", "channels", "test_fraction", "split_seed", *OPTIONAL_FIELDS}
        if unknown:
            raise ValueError(f"data has unknown key(s) {', '.join(sorted(unknown))}")
        size = obj.get("image_size")
        source = cls(data=obj["data"], image_size=None if size is None else tuple(size), channels=obj.get("channels"),
                     test_fraction=obj.get("test_fraction", 0.1), split_seed=obj.get("split_seed", 0),
                     **{name: obj.get(name) for name in OPTIONAL_FIELDS})
        source.check()
        return source

    def check(self) -> None:
        """Raise if a field is out of range.

        Raises:
            ValueError: Naming the field and what was expected.
        """
        for name in ("image_size", "channels", "test_fraction", "split_seed", "validation_fraction"):
            settings.check(name, getattr(self, name))
        if self.fixed_binarization is not None:
            settings.check("split_seed", self.fixed_binarization)  # the same kind of seed


#: The `DataSource` fields written to JSON only when set.
OPTIONAL_FIELDS = ("validation_fraction", "fixed_binarization")


@dataclass(frozen=True)
class Split:
    """The images of one split: uint8 arrays [N, H, W, C] in memory, or image files decoded by tf.data.

    Args:
        x: The images, uint8 [N, H, W, C]; None when `files` are given.
        files: Image file paths; None when `x` is given.
        y: Integer labels [N], or None.
    """
    x: Optional[np.ndarray] = None
    files: Optional[Tuple[str, ...]] = None
    y: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.x) if self.x is not None else len(self.files or ())


@dataclass(frozen=True)
class ImageData:
    """A checked data set of images: a train and a test split of one shape (and a validation split held out of the
    training images, if the source asks for one), labels or none, and its source.

    Args:
        train: The training split.
        test: The test split.
        image_shape: (H, W, C) of every image.
        source: Where it came from and how it was read (recorded in the run's configuration).
        kind: "mnist", "npz", "folder", "keras" or "arrays" (with `binary`, what `pipeline_vae.resolve` decides the
            default likelihood and binarization from).
        binary: Every pixel is 0 or 255 (or the data is MNIST, binarized for training by default).
        description: Where the images came from, for messages and logs.
        class_names: Names of the label values, if the source had any (e.g. class subfolders).
        validation: The validation split (None: none; the test split is what training evaluates).
    """
    train: Split
    test: Split
    image_shape: Tuple[int, int, int]
    source: DataSource = field(default_factory=DataSource)
    kind: str = "arrays"
    binary: bool = False
    description: str = "arrays"
    class_names: Optional[Tuple[str, ...]] = None
    validation: Optional[Split] = None

    @property
    def selection(self) -> Split:
        """The split training evaluates every epoch, on which the best models are chosen and early stopping decides:
        the validation split if there is one, else the test split (the seed's)."""
        return self.test if self.validation is None else self.validation

    @property
    def selection_name(self) -> str:
        """"validation" or "test": the name of `selection`."""
        return "test" if self.validation is None else "validation"

    @property
    def has_labels(self) -> bool:
        """Whether both splits have labels."""
        return self.train.y is not None and self.test.y is not None

    @property
    def in_memory(self) -> bool:
        """Whether both splits are arrays (not files)."""
        return self.train.x is not None and self.test.x is not None

    def train_images(self, n: Optional[int] = None) -> np.ndarray:
        """The first `n` training images (all when None) as uint8 [n, H, W, C], decoding files if need be."""
        return _images(self.train, self.image_shape, self.source, n)

    def test_images(self, n: Optional[int] = None) -> np.ndarray:
        """The first `n` test images (all when None) as uint8 [n, H, W, C], decoding files if need be."""
        return _images(self.test, self.image_shape, self.source, n)

    def validation_images(self, n: Optional[int] = None) -> np.ndarray:
        """The first `n` validation images (all when None) as uint8 [n, H, W, C].

        Raises:
            DataError: If there is no validation split.
        """
        if self.validation is None:
            raise DataError("data: there is no validation split; set validation_fraction (--validation-fraction)")
        return _images(self.validation, self.image_shape, self.source, n)

    def test_labels(self, n: Optional[int] = None) -> Optional[np.ndarray]:
        """The first `n` test labels (all when None), or None without labels."""
        return None if self.test.y is None else self.test.y[:n]

    def summary(self) -> str:
        """One line: what the data is, for the run's log."""
        h, w, c = self.image_shape
        labels = f", {len(self.class_names or ())} classes" if self.has_labels and self.class_names else (
            ", labelled" if self.has_labels else ", no labels")
        validation = "" if self.validation is None else f" / {len(self.validation)} validation"
        fixed = ("" if self.source.fixed_binarization is None else
                 f", validation and test binarized by a fixed draw (seed {self.source.fixed_binarization})")
        return (f"{self.description}: {len(self.train)} train{validation} / {len(self.test)} test images {h}x{w}x{c}"
                f"{' (files, decoded by tf.data)' if not self.in_memory else ''}{labels}{fixed}")

    @classmethod
    def from_arrays(cls, x_train: np.ndarray, x_test: np.ndarray, y_train: Optional[np.ndarray] = None,
                    y_test: Optional[np.ndarray] = None, description: str = "arrays",
                    source: Optional[DataSource] = None, kind: str = "arrays") -> "ImageData":
        """Check image (and label) arrays and wrap them.

        Args:
            x_train: Training images, [N, H, W] or [N, H, W, C] (C 1 or 3), uint8 0..255 or float 0..1 (floats are
                rounded to the nearest of 256 levels).
            x_test: Test images, the same H, W and C.
            y_train: Optional integer labels [N] (give both or neither).
            y_test: Optional integer labels for the test images.
            description: Where they came from, for messages.
            source: How to load them again (None: arrays, which cannot be).
            kind: See `ImageData`.

        Returns:
            The data set, images as uint8 [N, H, W, C].

        Raises:
            DataError: Naming the first array that is wrong and what was expected.
        """
        x_train, x_test = to_uint8_images(x_train, "x_train"), to_uint8_images(x_test, "x_test")
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(f"x_test: images are {_shape_text(x_test.shape[1:])} but x_train's are "
                            f"{_shape_text(x_train.shape[1:])}; train and test images must have the same size and "
                            "channels")
        if (y_train is None) != (y_test is None):
            raise DataError("labels: give both y_train and y_test, or neither")
        if y_train is not None:
            y_train, y_test = check_labels(y_train, len(x_train), "y_train"), check_labels(y_test, len(x_test),
                                                                                         "y_test")
        binary = _is_binary(x_train) and _is_binary(x_test)
        return cls(Split(x=x_train, y=y_train), Split(x=x_test, y=y_test), tuple(int(v) for v in x_train.shape[1:]),
                   source=source or DataSource(data="arrays"), kind=kind, binary=binary, description=description)


def _is_binary(x: np.ndarray, chunk: int = 1000) -> bool:
    """Whether every value is 0 or 255, checked a chunk of images at a time (stops at the first grey value, and never
    builds a mask the size of a whole data set)."""
    return all(np.all((x[i:i + chunk] == 0) | (x[i:i + chunk] == 255)) for i in range(0, len(x), chunk))


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(v) for v in shape)


def to_uint8_images(x: Any, name: str) -> np.ndarray:
    """Check an image array and return it as uint8 [N, H, W, C].

    Args:
        x: [N, H, W] or [N, H, W, C] with C 1 or 3; uint8 (or other integers) in 0..255, or floats in 0..1.
        name: The argument name, for messages.

    Returns:
        uint8 [N, H, W, C] (floats rounded to the nearest of the 256 levels k / 255).

    Raises:
        DataError: If `x` is not such an array: not an array, empty, another rank or channel count, NaN/Inf, or values
            out of range.
    """
    if not isinstance(x, np.ndarray):
        raise DataError(f"{name}: expected a numpy array of {EXPECTED_ARRAY}, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise DataError(f"{name}: expected {EXPECTED_ARRAY}, got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{name}: is empty; expected at least one image")
    if min(x.shape[1:3]) < 1:
        raise DataError(f"{name}: images of size {x.shape[1]}x{x.shape[2]}; expected at least 1x1")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)):
            raise DataError(f"{name}: contains NaN or Inf; expected {EXPECTED_ARRAY}")
        if x.min() < 0.0 or x.max() > 1.0:
            raise DataError(f"{name}: float values must be in 0..1, got {x.min():g}..{x.max():g} (pass uint8 for "
                            "0..255)")
        return np.round(x.astype(np.float64) * 255.0).astype(np.uint8)
    if x.dtype.kind in "iu":
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{name}: integer values must be in 0..255, got {x.min()}..{x.max()}")
        return x.astype(np.uint8)
    raise DataError(f"{name}: dtype {x.dtype} not supported; expected {EXPECTED_ARRAY}")


def check_labels(y: Any, n: int, name: str) -> np.ndarray:
    """Check a label array: non-negative integers, shape [n]. Returns it as int64.

    Raises:
        DataError: If `y` is not such an array.
    """
    if not isinstance(y, np.ndarray):
        raise DataError(f"{name}: expected a numpy array of integer labels, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:  # Keras' CIFAR labels are [N, 1]
        y = y[:, 0]
    if y.dtype.kind not in "iu":
        raise DataError(f"{name}: expected integer labels, got dtype {y.dtype}")
    if y.shape != (n, ):
        raise DataError(f"{name}: expected shape ({n},) to match the images, got {y.shape}")
    if y.size and y.min() < 0:
        raise DataError(f"{name}: expected labels >= 0, got a minimum of {y.min()}")
    return y.astype(np.int64)


def _images(split: Split, image_shape: Tuple[int, int, int], source: DataSource, n: Optional[int]) -> np.ndarray:
    if split.x is not None:
        return split.x[:n]
    from pipeline_vae.data.decode import decode_files  # TensorFlow, only for file splits
    return decode_files(split.files[:n], image_shape, resize=source.image_size is not None)
