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
from typing import Any, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _raw(epochs: int, batch: int) -> None:
    """The plain loop's process: train `epochs` epochs and print the test ELBO after each (one JSON line at the end)."""
    start = time.perf_counter()
    import numpy as np

    from benchmarks.raw_tf import RawCVAE, test_dataset, train_dataset
    from pipeline_vae.data.mnist import default_cache_path
    with np.load(default_cache_path()) as data:  # the tutorial's keras.datasets.mnist.load_data() is this np.load
        x_train, x_test = data["x_train"], data["x_test"]
    model = RawCVAE(latent_dim=2, learning_rate=1e-3)
    train, test = train_dataset(x_train, batch), test_dataset(x_test, batch)
    loop_start = time.perf_counter()
    elbos = []
    for epoch in range(1, epochs + 1):
        for x in train:
            model.train_step(x)
        elbos.append(model.test_elbo(test))
        print(f"epoch {epoch}: test ELBO {elbos[-1]:.2f}", flush=True)
    print(json.dumps({"loop_seconds": time.perf_counter() - loop_start, "before_loop_seconds": loop_start - start,
                      "elbos": elbos}), flush=True)


def _run(command: List[str], env: Dict[str, str]) -> Tuple[float, float, str]:
    """Run `command`; returns (wall seconds, peak RSS in MiB, stdout)."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {text[-1500:]}")
    return wall, usage.ru_maxrss / 1024, text


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="1,5", help="comma-separated epoch counts (default 1,5)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs per epoch count (default 3)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/whole_run")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    epoch_counts = [int(e) for e in args.epochs.split(",")]
    if args.raw:
        _raw(epoch_counts[0], args.batch)
        return 0
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")
    results: Dict[str, Any] = {}
    for epochs in epoch_counts:
        pairs = []
        for pair in range(args.pairs):
            order = ("project", "raw") if pair % 2 == 0 else ("raw", "project")
            measured: Dict[str, Dict[str, Any]] = {}
            for who in order:
                with tempfile.TemporaryDirectory() as work:
                    if who == "project":
                        command = [exe, "train", "--epochs", str(epochs), "--batch-size", str(args.batch),
                                   "--save-dir", os.path.join(work, "run")]
                        wall, rss, text = _run(command, env)
                        inside = float(re.findall(r"total_time\(sec\): ([\d.]+)", text)[-1])
                        elbo = float(re.findall(r"Final test ELBO: (-?[\d.]+)", text)[-1])
                    else:
                        command = [sys.executable, "-m", "benchmarks.whole_run", "--raw", "--epochs", str(epochs),
                                   "--batch", str(args.batch)]
                        wall, rss, text = _run(command, env)
                        line = json.loads([x for x in text.splitlines() if x.startswith("{")][-1])
                        inside, elbo = line["loop_seconds"], line["elbos"][-1]
                measured[who] = {"wall_seconds": round(wall, 2), "peak_rss_mib": round(rss, 1),
                                 "training_seconds": round(inside, 2), "outside_seconds": round(wall - inside, 2),
                                 "final_test_elbo": round(elbo, 2)}
            measured["ratio"] = round(measured["project"]["wall_seconds"] / measured["raw"]["wall_seconds"], 3)
            measured["rss_ratio"] = round(measured["project"]["peak_rss_mib"] / measured["raw"]["peak_rss_mib"], 3)
            print(f"{epochs} epoch(s), pair {pair + 1}: project {measured['project']['wall_seconds']:.1f} s "
                  f"({measured['project']['peak_rss_mib']:.0f} MiB), raw {measured['raw']['wall_seconds']:.1f} s "
                  f"({measured['raw']['peak_rss_mib']:.0f} MiB): ratio {measured['ratio']:.3f}", flush=True)
            pairs.append(measured)
        ratios = [p["ratio"] for p in pairs]
        results[str(epochs)] = {
            "pairs": pairs, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios), "median_rss_ratio": statistics.median(p["rss_ratio"] for p in pairs),
            **{f"median_{who}_{key}": statistics.median(p[who][key] for p in pairs)
               for who in ("project", "raw") for key in ("wall_seconds", "training_seconds", "outside_seconds",
                                                         "peak_rss_mib")}}
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "load_average_at_end": round(os.getloadavg()[0], 2)}
    with open(os.path.join(args.out, "whole_run.json"), "w") as file:
        json.dump({"results": results, "machine": machine, "batch": args.batch}, file, indent=2)
    lines = ["| epochs | pairs | ratio (median, range) | project: wall / training / outside (s) | raw: wall / "
             "training / outside (s) | peak RSS project / raw (MiB) |", "|---|---|---|---|---|---|"]
    for epochs, r in results.items():
        lines.append(f"| {epochs} | {len(r['pairs'])} | {r['median_ratio']:.3f} ({r['min_ratio']:.3f}-"
                     f"{r['max_ratio']:.3f}) | {r['median_project_wall_seconds']:.1f} / "
                     f"{r['median_project_training_seconds']:.1f} / {r['median_project_outside_seconds']:.1f} | "
                     f"{r['median_raw_wall_seconds']:.1f} / {r['median_raw_training_seconds']:.1f} / "
                     f"{r['median_raw_outside_seconds']:.1f} | {r['median_project_peak_rss_mib']:.0f} / "
                     f"{r['median_raw_peak_rss_mib']:.0f} |")
    with open(os.path.join(args.out, "whole_run.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
