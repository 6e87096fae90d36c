"""A small progress line with an ETA for long evaluations (no extra dependency)."""
import sys
import time
from typing import Optional, TextIO


def clock(seconds: float) -> str:
    """Seconds as "1m05s", or "1h02m03s" from an hour on."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Report `done / total` with elapsed time and ETA.

    On a terminal the line is redrawn in place at most every `interval` seconds; otherwise (logs, CI) one line is
    written at each further 10% of the work, so logs stay short.

    Args:
        total: Units of work in all.
        label: What is being done, e.g. "IW bound K=1000".
        stream: Where to write; None for sys.stderr.
        interval: Minimum seconds between redraws on a terminal.
    """
    def __init__(self, total: int, label: str, stream: Optional[TextIO] = None, interval: float = 0.5) -> None:
        self.total, self.label, self.interval = max(int(total), 1), label, interval
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done, self.start, self.last_draw, self.last_decile = 0, time.perf_counter(), 0.0, 0

    def line(self) -> str:
        """The current progress text."""
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_text = clock(eta) if self.done else "?"
        return (f"{self.label}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%) "
                f"elapsed {clock(elapsed)} ETA {eta_text}")

    def update(self, n: int = 1) -> None:
        """Record `n` more units done and redraw if due."""
        self.done = min(self.done + n, self.total)
        now = time.perf_counter()
        if self.tty:
            if now - self.last_draw >= self.interval or self.done == self.total:
                self.stream.write("\r" + self.line())
                self.stream.flush()
                self.last_draw = now
        else:
            decile = 10 * self.done // self.total
            if decile > self.last_decile:
                self.last_decile = decile
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def close(self) -> None:
        """End the in-place line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
