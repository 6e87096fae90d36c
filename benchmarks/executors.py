"""The ablation executors measured: one reduced spec run four ways with the CLI, as a user would, each a whole process.

    python -m benchmarks.executors [--out benchmarks/results/executors] [--spec apphub/ablations/binarization.yaml]

    A  local, one trial at a time, 2 threads each      (the default executor on this 2-core machine)
    B  ray,   one trial at a time, 2 CPUs each          (B - A: Ray's cost, per trial and for starting Ray)
    C  ray,   two trials at once, 1 CPU each            (what concurrency buys on 2 cores)
    D  local, two trials at once, 1 thread each         (must give C's table exactly: same threads per trial)

The spec's budget is reduced (1 epoch of `--steps` steps, IW bound K=10 on 1000 test images) so the four runs take
minutes. Prints a table and writes `executors.json` and `executors.md`: wall seconds per run, seconds per trial, the
Ray overhead, and whether A = B and C = D hold for every number of every trial (they must: one seed, the same threads,
the same code in a fresh process).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List

import yaml

RUNS = (("A", "local", 1, 2), ("B", "ray", 1, 2), ("C", "ray", 2, 1), ("D", "local", 2, 1))
NUMBERS = ("iw_bound", "elbo_analytic", "kl", "active_units", "reconstruction")


def reduced_spec(path: str, steps: int, out: str) -> str:
    """The spec at `path` with a small budget and evaluation; returns the new file's path."""
    with open(path) as file:
        spec = yaml.safe_load(file)
    spec["name"] = spec["name"] + "-reduced"
    spec["budget"] = {"epochs": 1, "train_steps_per_epoch": steps, "eval_steps_per_epoch": 10}
    spec["eval"] = {"iw_samples": 10, "n_images": 1000}
    target = os.path.join(out, "spec.yaml")
    with open(target, "w") as file:
        yaml.safe_dump(spec, file, sort_keys=False)
    return target


def _rows(folder: str) -> Dict[str, Dict[str, Any]]:
    with open(os.path.join(folder, "results.json")) as file:
        return {f"{r['variant']}/{r['seed']}": {k: r[k] for k in NUMBERS} for r in json.load(file)["runs"]}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="apphub/ablations/binarization.yaml")
    parser.add_argument("--steps", type=int, default=200, help="training steps per trial (default 200)")
    parser.add_argument("--out", default="benchmarks/results/executors")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    spec = reduced_spec(args.spec, args.steps, args.out)
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")
    results: Dict[str, Dict[str, Any]] = {}
    for label, executor, concurrent, cpus in RUNS:
        folder = os.path.join(args.out, label)
        shutil.rmtree(folder, ignore_errors=True)
        command = [exe, "ablate", spec, "--out", folder, "--executor", executor, "--max-concurrent", str(concurrent),
                   "--cpus-per-trial", str(cpus)]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
            return 1
        rows = _rows(folder)
        results[label] = {"executor": executor, "max_concurrent": concurrent, "cpus_per_trial": cpus,
                          "wall_seconds": round(wall, 1), "trials": len(rows),
                          "seconds_per_trial": round(wall / len(rows), 2), "rows": rows,
                          "command": " ".join(["pipeline-vae", *command[1:]])}
        print(f"{label}: {executor} x{concurrent}, {cpus} CPU(s)/trial: {wall:.1f} s for {len(rows)} trials",
              flush=True)
    trials = results["A"]["trials"]
    summary = {
        "same_table_A_B": results["A"]["rows"] == results["B"]["rows"],
        "same_table_C_D": results["C"]["rows"] == results["D"]["rows"],
        "ray_overhead_seconds_per_trial": round((results["B"]["wall_seconds"] - results["A"]["wall_seconds"]) / trials,
                                                2),
        "speedup_two_at_once_ray": round(results["B"]["wall_seconds"] / results["C"]["wall_seconds"], 2),
        "speedup_two_at_once_local": round(results["A"]["wall_seconds"] / results["D"]["wall_seconds"], 2),
    }
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    with open(os.path.join(args.out, "executors.json"), "w") as file:
        json.dump({"spec": spec, "steps": args.steps, "runs": results, "summary": summary, "machine": machine}, file,
                  indent=2)
    lines = ["| run | executor | at once | CPUs/trial | wall (s) | s/trial |", "|---|---|---|---|---|---|"]
    lines += [f"| {label} | {r['executor']} | {r['max_concurrent']} | {r['cpus_per_trial']} | {r['wall_seconds']} | "
              f"{r['seconds_per_trial']} |" for label, r in results.items()]
    lines += ["", f"Same table A = B: {summary['same_table_A_B']}; C = D: {summary['same_table_C_D']}. Ray's overhead "
              f"(B - A) per trial: {summary['ray_overhead_seconds_per_trial']} s. Two at once: ray "
              f"{summary['speedup_two_at_once_ray']}x, local {summary['speedup_two_at_once_local']}x."]
    with open(os.path.join(args.out, "executors.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
