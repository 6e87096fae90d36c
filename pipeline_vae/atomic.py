"""Crash-safe file writes: write to a temporary name in the same folder, flush to disk, rename over the target.

A full disk (or quota) while writing ends in `DiskFullError`, one line naming the file, with the previous file intact.
"""
import errno
import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator


#: errno values of a write that found no room: no space left, or the user's disk quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A file could not be written for lack of space; the previous file at that path is intact.

    Args:
        path: The file that was being written.
    """
    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOSPC, "No space left on device", path)
        self.message = (f"no space left on the device to write {path}; the previous file is intact. Free some space "
                        "and run the same command again")

    def __str__(self) -> str:
        return self.message


def is_disk_full(err: BaseException) -> bool:
    """Whether `err` (or an error it was raised from) is a write that found no room."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            return True
        err = err.__cause__ or err.__context__
    return False


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
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        os.close(fd)
        yield tmp
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if is_disk_full(err):
            raise DiskFullError(path) from err
        raise


def write_json_atomic(path: str, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` through `atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, "w") as file:
        json.dump(obj, file, indent=2, sort_keys=True)
        file.write("\n")
