"""Crash-safe file writes: write to a temporary name in the same folder, flush to disk, rename over the target."""
import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write `path`'s new content to; on success it replaces `path` in one rename.

    A crash or an exception at any moment leaves either the old file or the new one, never a half-written one; the
    temporary file is removed on failure.

    Args:
        path: The file to (re)write. Its folder is created if missing.

    Yields:
        A path in the same folder (so the rename is atomic) that the caller writes completely.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(path: str, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` through `atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, "w") as file:
        json.dump(obj, file, indent=2, sort_keys=True)
        file.write("\n")
