"""Chaos check: kill `pipeline-vae train` (SIGKILL) again and again while it trains, rerun the same command each time,
and check the finished run: every epoch once in the log, the logged train steps once each, the final models loading.

    .venv/bin/python tools/chaos_check.py --kills 20 --report docs/chaos_check.md     # (also: make chaos-check)

A kill counts as landing inside training when the process had printed a training step (FE's progress line) since it
(re)started and had not finished. The delay after that line is drawn from a seeded generator, so kills fall anywhere
in an epoch: mid-step, during evaluation, while the best model or the checkpoint is written. After `--kills` landed
kills the command is left to finish. Exit status 0 only if the finished run passes every check.
"""
import argparse
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXE = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")


def train_command(save_dir: str, epochs: int) -> List[str]:
    return [EXE, "train", "--save-dir", save_dir, "--epochs", str(epochs), "--batch-size", "100",
            "--train-steps-per-epoch", "30", "--eval-steps-per-epoch", "5", "--log-steps", "5"]


def one_start(command: List[str], kill_after: Optional[float]) -> str:
    """Run `command`; kill it `kill_after` seconds after its first training-step line (None: let it finish).

    Returns:
        "landed" (killed inside training), "early" (killed before any training step), "finished" or "failed".
    """
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    trained = False
    deadline = None
    for line in proc.stdout:
        if "FastEstimator-Train: step:" in line and not trained:
            trained = True
            if kill_after is not None:
                deadline = time.monotonic() + kill_after
                break
    if deadline is not None:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "landed"
    proc.stdout.read()
    code = proc.wait()
    if code == 0:
        return "finished"
    return "early" if not trained and code < 0 else "failed"


def check_run(save_dir: str, epochs: int) -> List[str]:
    """What is wrong with the finished run (empty if nothing)."""
    problems = []
    with open(os.path.join(save_dir, "train_log.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    evals = Counter(int(r["epoch"]) for r in rows if r["mode"] == "eval")
    if sorted(evals) != list(range(1, epochs + 1)) or set(evals.values()) != {1}:
        problems.append(f"eval rows per epoch: {dict(sorted(evals.items()))} (expected each of 1..{epochs} once)")
    # (FE also writes a train row with the epoch's time at its last step, without a loss: those are not counted)
    steps = Counter(int(r["step"]) for r in rows if r["mode"] == "train" and r["loss"])
    if any(count != 1 for count in steps.values()):
        problems.append(f"train steps logged twice: {sorted(s for s, c in steps.items() if c != 1)[:10]}")
    probe = ("import sys; from pipeline_vae.inference import CVAE; import numpy as np; vae = CVAE.load(sys.argv[1]); "
             "print(vae.generate(2, seed=0).shape)")
    loaded = subprocess.run([sys.executable, "-c", probe, save_dir], capture_output=True, text=True)
    if loaded.returncode != 0 or "(2, 28, 28)" not in loaded.stdout:
        problems.append(f"the final models do not load: {loaded.stderr.strip().splitlines()[-1:]}")
    return problems


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills that must land inside training (default 20)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the run (default 40: enough that the kills "
                        "usually all land in one run)")
    parser.add_argument("--max-delay", type=float, default=2.0,
                        help="the kill comes up to this many seconds after the first training step (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays (default 0)")
    parser.add_argument("--report", default=None, metavar="FILE", help="also write the result as Markdown to FILE")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="pipeline-vae-chaos-")
    save_dir = os.path.join(work, "run")
    command = train_command(save_dir, args.epochs)
    outcomes: Counter = Counter()
    start = time.perf_counter()
    try:
        while outcomes["landed"] < args.kills:
            outcome = one_start(command, rng.uniform(0.0, args.max_delay))
            outcomes[outcome] += 1
            print(f"chaos-check: start {sum(outcomes.values())}: {outcome} ({outcomes['landed']} of {args.kills} "
                  "kills landed in training)", flush=True)
            if outcome == "failed":
                break
            if outcome == "finished":  # done before enough kills: start over in a fresh folder
                shutil.rmtree(save_dir)
        final = one_start(command, None) if outcomes["failed"] == 0 else "failed"
        problems = check_run(save_dir, args.epochs) if final == "finished" else [f"the last start: {final}"]
    finally:
        seconds = time.perf_counter() - start
    shutil.rmtree(work, ignore_errors=True)
    verdict = "passed" if not problems else "FAILED: " + "; ".join(problems)
    summary = (f"{outcomes['landed']} SIGKILLs landed inside training ({outcomes['early']} more before the first "
               f"step, {outcomes['finished']} run(s) finished before enough kills and started over), then the same "
               f"command finished the {args.epochs}-epoch run: {verdict} ({seconds:.0f} s)")
    print(f"chaos-check: {summary}")
    if args.report:
        sys.path.insert(0, ROOT)
        from pipeline_vae.atomic import atomic_path
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        text = (f"# Last chaos check\n\n`make chaos-check` (`tools/chaos_check.py --kills {args.kills} --epochs "
                f"{args.epochs} --seed {args.seed}`) on commit `{commit}`, {time.strftime('%Y-%m-%d')}: {summary}.\n\n"
                "Checked after the last start: the log holds every eval epoch once and every logged train step once, and "
                "`CVAE.load` reads the final models.\n")
        with atomic_path(args.report) as tmp, open(tmp, "w") as file:
            file.write(text)
        print(f"Saved: {args.report}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
