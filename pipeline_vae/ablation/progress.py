"""What an ablation prints while it runs: one line per finished or failed trial, and an overall bar with the time
left (on a terminal; in a log file the lines carry the count and the time left themselves)."""
import time
from typing import Any, Dict, Optional, TextIO

from tqdm import tqdm

from pipeline_vae.ablation.trial import Trial


class Progress:
    """Counts trials and estimates the time left from the pace of the trials finished in this session.

    Args:
        total: Trials in the spec.
        done: Trials already finished before this session.
        stream: Where lines go.
        epochs: Epochs per trial (for the bar's note on running trials).
    """
    def __init__(self, total: int, done: int, stream: TextIO, epochs: int) -> None:
        self.total, self.done, self.stream, self.epochs = total, done, stream, epochs
        self.finished_here = 0
        self.failed = 0
        self.started = time.perf_counter()
        self.running: Dict[str, str] = {}
        tty = getattr(stream, "isatty", lambda: False)()
        self.bar = tqdm(total=total, initial=done, file=stream, disable=not tty, unit="trial", dynamic_ncols=True,
                        desc="ablation")

    def say(self, text: str) -> None:
        """Print a line (above the bar on a terminal)."""
        if self.bar.disable:
            self.stream.write(text + "\n")
            self.stream.flush()
        else:
            self.bar.write(text, file=self.stream)

    def eta(self) -> str:
        left = self.total - self.done - self.failed
        if not self.finished_here or left <= 0:
            return "?" if left > 0 else "0:00"
        return tqdm.format_interval((time.perf_counter() - self.started) / self.finished_here * left)

    def epoch(self, trial: Trial, epoch: int, elbo: float) -> None:
        """A running trial finished an epoch."""
        self.running[trial.name] = f"{trial.name} epoch {epoch}/{self.epochs} elbo {elbo:.2f}"
        self.bar.set_postfix_str("; ".join(self.running.values()), refresh=True)

    def finished(self, trial: Trial, record: Dict[str, Any], seconds: Optional[float] = None) -> None:
        """A trial's record was written."""
        self.running.pop(trial.name, None)
        self.done += 1
        self.finished_here += 1
        self.bar.update(1)
        took = "" if seconds is None else f" in {tqdm.format_interval(seconds)}"
        resumed = record.get("resumed_from_epoch") or 0
        note = f" (resumed after epoch {resumed}, {record.get('attempts')} attempts)" if resumed else ""
        bound = f"IW bound {record['iw_bound']:.2f}, " if record.get("iw_bound") is not None else ""  # (eval K=0)
        self.say(f"[{self.done}/{self.total}] {trial.name} done{took}{note}: {bound}"
                 f"ELBO {record['elbo_analytic']:.2f}, KL "
                 f"{record['kl']:.2f}, active units {record['active_units']}; elapsed "
                 f"{tqdm.format_interval(time.perf_counter() - self.started)}, ETA {self.eta()}")

    def failed_attempt(self, trial: Trial, error: str, retrying: bool) -> None:
        """A trial's attempt failed (retried or given up)."""
        self.running.pop(trial.name, None)
        if retrying:
            self.say(f"    {trial.name} failed, retrying: {error}")
            return
        self.failed += 1
        self.say(f"[failed] {trial.name}: {error}")

    def close(self) -> None:
        self.bar.close()
