"""Whole runs as a user times them: `pipeline-vae train` against the plain TensorFlow loop, each a fresh process.

    python -m benchmarks.whole_run [--epochs 1,5] [--pairs 3] [--out benchmarks/results/whole_run]

The project's contender is the command a new user runs, with every default output on (best-model `.h5` files, the
checkpoint, the CSV log, sample grids and GIF, progress lines): `pipeline-vae train --epochs E --save-dir TMP`. The
plain loop is `benchmarks/raw_tf.py`'s `RawCVAE` (the TensorFlow tutorial's `tf.function` step over `tf.data`, the same
model, loss, Adam 1e-3, batch 100) run as its own process (`--raw`) over the same cached MNIST, with its own test-set
ELBO after every epoch, and nothing written. The two alternate, pair by pair (the order flips every pair), so both see
the same machine load. For each process: wall time from launch to exit, peak resident memory (`wait4`), and the time
inside training (FE's `total_time(sec)`; the raw loop's own clock), the rest being start-up (interpreter, imports,
data, graph building) and exit.

Prints a table; writes `whole_run.json` and `whole_run.md` (medians and ranges of the per-pair ratios).
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _raw(epochs: int, batch: int, steps: Optional[int] = None, eval_steps: Optional[int] = None) -> None:
    """The plain loop's process: train `epochs` epochs (`steps` batches each, all when None) and print the test ELBO
    after each (over `eval_steps` batches, all when None); one JSON line at the end."""
    start = time.perf_counter()
    import numpy as np

    from benchmarks.raw_tf import RawCVAE, test_dataset, train_dataset
    from pipeline_vae.data.mnist import default_cache_path
    with np.load(default_cache_path()) as data:  # the tutorial's keras.datasets.mnist.load_data() is this np.load
        x_train, x_test = data["x_train"], data["x_test"]
    model = RawCVAE(latent_dim=2, learning_rate=1e-3)
    train, test = train_dataset(x_train, batch), test_dataset(x_test, batch)
    if steps is not None:
        train = train.take(steps)
    if eval_steps is not None:
        test = test.take(eval_steps)
    loop_start = time.perf_counter()
    elbos, epoch_seconds = [], []
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        for x in train:
            model.train_step(x)
        epoch_seconds.append(time.perf_counter() - epoch_start)
        elbos.append(model.test_elbo(test))
        print(f"epoch {epoch}: test ELBO {elbos[-1]:.2f}", flush=True)
    print(json.dumps({"loop_seconds": time.perf_counter() - loop_start, "before_loop_seconds": loop_start - start,
                      "elbos": elbos, "epoch_seconds": epoch_seconds}), flush=True)


def _run(command: List[str], env: Optional[Dict[str, str]] = None) -> Tuple[float, float, str, int]:
    """Run `command` from the repository root; returns (wall seconds, peak RSS in MiB, stdout + stderr, exit code)."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env or _env(), cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    return wall, usage.ru_maxrss / 1024, text, os.waitstatus_to_exitcode(status)


def _run_ok(command: List[str], env: Optional[Dict[str, str]] = None) -> Tuple[float, float, str]:
    wall, rss, text, code = _run(command, env)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}): {text[-1500:]}")
    return wall, rss, text


def _env(**extra: str) -> Dict[str, str]:
    """This environment for a measured process: TensorFlow's start-up lines off, and no op determinism inherited
    (`fe.enable_deterministic` in a calling process sets TF_DETERMINISTIC_OPS; the plain loop's unseeded random ops
    would fail under it)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_DETERMINISTIC_OPS"}
    return dict(env, TF_CPP_MIN_LOG_LEVEL="3", **extra)


def cli() -> str:
    """The installed `pipeline-vae` console script beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), "pipeline-vae")


def _caps(steps: Optional[int], eval_steps: Optional[int]) -> List[str]:
    return ([] if steps is None else ["--train-steps-per-epoch", str(steps)]) + (
        [] if eval_steps is None else ["--eval-steps-per-epoch", str(eval_steps)])


def epoch_times(text: str) -> List[float]:
    """FE's per-epoch training times from a run's console output."""
    return [float(t) for t in re.findall(r"epoch_time\(sec\): ([\d.]+)", text)]


def measure_pairs(epochs: int, pairs: int, batch: int = 100, steps: Optional[int] = None,
                  eval_steps: Optional[int] = None, say: Callable[[str], None] = print) -> Dict[str, Any]:
    """`pairs` alternating pairs of whole processes (`pipeline-vae train` and the plain loop) for `epochs` epochs;
    every pair's figures and the medians."""
    measured_pairs = []
    for pair in range(pairs):
        order = ("project", "raw") if pair % 2 == 0 else ("raw", "project")
        measured: Dict[str, Any] = {}
        for who in order:
            with tempfile.TemporaryDirectory() as work:
                if who == "project":
                    wall, rss, text = _run_ok([cli(), "train", "--epochs", str(epochs), "--batch-size", str(batch),
                                               "--save-dir", os.path.join(work, "run"), *_caps(steps, eval_steps)])
                    inside = float(re.findall(r"total_time\(sec\): ([\d.]+)", text)[-1])
                    elbo = float(re.findall(r"Final test ELBO: (-?[\d.]+)", text)[-1])
                    epochs_s = epoch_times(text)
                else:
                    wall, rss, text = _run_ok([sys.executable, "-m", "benchmarks.whole_run", "--raw", "--epochs",
                                               str(epochs), "--batch", str(batch)] + (
                                                   [] if steps is None else ["--steps", str(steps)]) + (
                                                   [] if eval_steps is None else ["--eval-steps", str(eval_steps)]))
                    line = json.loads([x for x in text.splitlines() if x.startswith("{")][-1])
                    inside, elbo, epochs_s = line["loop_seconds"], line["elbos"][-1], line["epoch_seconds"]
            measured[who] = {"wall_seconds": round(wall, 2), "peak_rss_mib": round(rss, 1),
                             "training_seconds": round(inside, 2), "outside_seconds": round(wall - inside, 2),
                             "final_test_elbo": round(elbo, 2), "epoch_seconds": [round(t, 2) for t in epochs_s]}
        measured["ratio"] = round(measured["project"]["wall_seconds"] / measured["raw"]["wall_seconds"], 3)
        measured["rss_ratio"] = round(measured["project"]["peak_rss_mib"] / measured["raw"]["peak_rss_mib"], 3)
        say(f"  {epochs} epoch(s), pair {pair + 1}: project {measured['project']['wall_seconds']:.1f} s "
            f"({measured['project']['peak_rss_mib']:.0f} MiB), raw loop {measured['raw']['wall_seconds']:.1f} s "
            f"({measured['raw']['peak_rss_mib']:.0f} MiB): ratio {measured['ratio']:.3f}")
        measured_pairs.append(measured)
    ratios = [p["ratio"] for p in measured_pairs]
    return {"pairs": measured_pairs, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios), "median_rss_ratio": statistics.median(p["rss_ratio"] for p in measured_pairs),
            **{f"median_{who}_{key}": statistics.median(p[who][key] for p in measured_pairs)
               for who in ("project", "raw") for key in ("wall_seconds", "training_seconds", "outside_seconds",
                                                         "peak_rss_mib")}}


def markdown(results: Dict[str, Dict[str, Any]]) -> str:
    """The whole-run table (one row per epoch count)."""
    lines = ["| epochs | pairs | ratio (median, range) | project: wall / training / outside (s) | raw: wall / "
             "training / outside (s) | peak RSS project / raw (MiB) |", "|---|---|---|---|---|---|"]
    for epochs, r in results.items():
        lines.append(f"| {epochs} | {len(r['pairs'])} | {r['median_ratio']:.3f} ({r['min_ratio']:.3f}-"
                     f"{r['max_ratio']:.3f}) | {r['median_project_wall_seconds']:.1f} / "
                     f"{r['median_project_training_seconds']:.1f} / {r['median_project_outside_seconds']:.1f} | "
                     f"{r['median_raw_wall_seconds']:.1f} / {r['median_raw_training_seconds']:.1f} / "
                     f"{r['median_raw_outside_seconds']:.1f} | {r['median_project_peak_rss_mib']:.0f} / "
                     f"{r['median_raw_peak_rss_mib']:.0f} |")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="1,5", help="comma-separated epoch counts (default 1,5)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs per epoch count (default 3)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=None, help="cap on training batches per epoch (both sides)")
    parser.add_argument("--eval-steps", type=int, default=None, help="cap on test batches per epoch (both sides)")
    parser.add_argument("--out", default="benchmarks/results/whole_run")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    epoch_counts = [int(e) for e in args.epochs.split(",")]
    if args.raw:
        _raw(epoch_counts[0], args.batch, args.steps, args.eval_steps)
        return 0
    os.makedirs(args.out, exist_ok=True)
    results = {str(epochs): measure_pairs(epochs, args.pairs, args.batch, args.steps, args.eval_steps)
               for epochs in epoch_counts}
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "load_average_at_end": round(os.getloadavg()[0], 2)}
    with open(os.path.join(args.out, "whole_run.json"), "w") as file:
        json.dump({"results": results, "machine": machine, "batch": args.batch}, file, indent=2)
    table = markdown(results)
    with open(os.path.join(args.out, "whole_run.md"), "w") as file:
        file.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
