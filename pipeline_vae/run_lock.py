"""One process per run folder: `DIR/.lock` holds the owner's pid under an exclusive `flock`.

    with RunLock("runs/cvae"):     # RunLockedError if another live process holds it
        ...train...

The kernel drops a `flock` when its process dies, however it dies (SIGKILL included), so a lock file left by a dead
process is simply taken over by the next one: no stale-lock clean-up, no pid guessing. Linux/macOS only (fcntl).
"""
import fcntl
import os
from typing import Optional

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process is using the run folder."""


class RunLock:
    """An exclusive, non-blocking lock on a run folder (created if missing).

    Args:
        directory: The run folder.

    Raises:
        RunLockedError: From `acquire` (and `with`), naming the folder and the owner's pid.
    """
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: Optional[int] = None
        self.took_over: Optional[int] = None  # pid found in a lock file nobody held (a dead run)

    def _read_pid(self, fd: int) -> Optional[int]:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None

    def acquire(self) -> "RunLock":
        """Take the lock, or raise RunLockedError if a live process holds it."""
        if self._fd is not None:
            return self
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self._read_pid(fd)
            os.close(fd)
            raise RunLockedError(f"{self.directory} is in use by another process (pid {owner if owner else '?'}, lock "
                                 f"file {self.path}); wait for it to finish or use another --save-dir") from None
        previous = self._read_pid(fd)
        self.took_over = previous if previous not in (None, os.getpid()) else None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up. The file stays, emptied: an unheld lock file means nothing, and only a pid left by a
        process that died holding the lock is reported as taken over."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: the process's exit drops the lock anyway
            pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
