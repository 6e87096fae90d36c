"""The default executor: each trial in a fresh Python process on this machine, `max_concurrent` at a time.

A fresh process per trial means every trial starts from the same process state (a variant's numbers do not depend on
which ran before it), and a trial can be reproduced alone. A trial whose process fails is started again, up to
`max_failures` times; it resumes from its last epoch checkpoint.
"""
import csv
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pipeline_vae.ablation.progress import Progress
from pipeline_vae.ablation.trial import RUN_LOG, Trial, last_error, read_record, thread_env
from pipeline_vae.run_config import FILES


def _epochs_logged(folder: str) -> List[Tuple[int, float]]:
    """(epoch, test ELBO) of the evaluations in a running trial's `train_log.csv` (written atomically by the run)."""
    try:
        with open(os.path.join(folder, FILES["log"])) as file:
            return [(int(r["epoch"]), float(r["elbo"])) for r in csv.DictReader(file) if r.get("mode") == "eval"]
    except (OSError, ValueError, KeyError):
        return []


def run_local(spec_path: str, trials: Sequence[Trial], out_dir: str, progress: Progress, data: Optional[str] = None,
              tracking: Sequence[Dict[str, Any]] = (), max_concurrent: int = 1, max_failures: int = 2,
              cpus_per_trial: Optional[int] = None) -> Dict[Trial, str]:
    """Run `trials` to their records.

    Args:
        spec_path: The spec as written to OUT/spec.json.
        trials: The trials to run.
        out_dir: The ablation's folder.
        progress: Where lines go.
        data: The data instead of the spec's.
        tracking: Tracker settings for the trials.
        max_concurrent: Trials at once.
        max_failures: Restarts per trial after a failure.
        cpus_per_trial: Threads per trial (None: TensorFlow's default, every core).

    Returns:
        The trials that failed for good -> their error (empty when all finished).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
               **thread_env(cpus_per_trial))
    queue = list(trials)
    failures: Dict[Trial, int] = {}
    failed: Dict[Trial, str] = {}
    running: Dict[Trial, Tuple[subprocess.Popen, Any, float, int]] = {}
    try:
        while queue or running:
            while queue and len(running) < max_concurrent:
                trial = queue.pop(0)
                folder = trial.folder(out_dir)
                os.makedirs(folder, exist_ok=True)
                command = [sys.executable, "-m", "pipeline_vae.ablation.trial", spec_path, trial.variant,
                           str(trial.seed), trial.key, out_dir, data or "-", json.dumps(list(tracking))]
                log = open(os.path.join(folder, RUN_LOG), "a")
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
                running[trial] = (proc, log, time.perf_counter(), 0)
            time.sleep(0.5)
            for trial, (proc, log, started, seen) in list(running.items()):
                folder = trial.folder(out_dir)
                epochs = _epochs_logged(folder)
                for epoch, elbo in epochs[seen:]:
                    progress.epoch(trial, epoch, elbo)
                running[trial] = (proc, log, started, max(seen, len(epochs)))
                if proc.poll() is None:
                    continue
                log.close()
                del running[trial]
                record = read_record(folder, trial.key)
                if proc.returncode == 0 and record is not None:
                    progress.finished(trial, record, time.perf_counter() - started)
                    continue
                error = (f"exit code {proc.returncode}: {last_error(os.path.join(folder, RUN_LOG))}; full output in "
                         f"{os.path.join(folder, RUN_LOG)}")
                failures[trial] = failures.get(trial, 0) + 1
                retry = failures[trial] <= max_failures
                progress.failed_attempt(trial, error, retrying=retry)
                if retry:
                    queue.insert(0, trial)
                else:
                    failed[trial] = error
    finally:
        for proc, log, _, _ in running.values():  # interrupted: stop the trials (each resumes on the next run)
            proc.kill()
            proc.wait()
            log.close()
    return failed
