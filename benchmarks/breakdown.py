"""Where a `pipeline-vae train` run's time goes, measured inside one fresh process that runs the CLI itself.

    PIPELINE_VAE_BENCH_LAUNCH=$(date +%s.%N) python -m benchmarks.breakdown [pipeline-vae train arguments]

The process times, from its launch (the launching side passes its clock in `PIPELINE_VAE_BENCH_LAUNCH`; without it
the interpreter's start is not counted): the interpreter, importing the CLI, reading and checking the data,
importing TensorFlow/FastEstimator/torch, building the estimator (`get_estimator`: the two models through
`fe.build`, the traces, the config), FE's warm-up (tracing the train and eval steps), then every training and eval
epoch, and inside them each trace's hooks (every Trace class in the fit, FE's own included, wrapped at class level so
nested `super()` calls count once), and the rest of the command after the fit; and, inside those, autograph's
conversion of functions (the project's ops apart) and full garbage collections. It then runs the real
`pipeline_vae.cli.main(["train", ...])`, so the numbers are the command's.

Prints one JSON object (the last line of stdout); `measure()` runs such a process and sums it up per phase and per
epoch (`benchmarks.bench`'s `breakdown` section).
"""
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence

HOOKS = ("on_begin", "on_epoch_begin", "on_batch_begin", "on_batch_end", "on_ds_begin", "on_ds_end", "on_epoch_end",
         "on_end")
LAUNCH_ENV = "PIPELINE_VAE_BENCH_LAUNCH"


class Clock:
    """Named spans of wall time (seconds), nested calls of one wrapped name counted once."""
    def __init__(self) -> None:
        self.spans: Dict[str, float] = defaultdict(float)
        self.counts: Dict[str, int] = defaultdict(int)
        self._depth = threading.local()

    def timed(self, name_of: Callable[..., str], function: Callable, group: str = "") -> Callable:
        """`function` wrapped to add its time to `name_of(*args)`; of nested calls wrapped with the same `group`, only
        the outermost counts (a trace hook calling its parent class's hook)."""
        clock = self

        def wrapper(*args, **kwargs):
            depth = getattr(clock._depth, group or name_of(*args), 0)
            setattr(clock._depth, group or name_of(*args), depth + 1)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                setattr(clock._depth, group or name_of(*args), depth)
                if depth == 0:
                    name = name_of(*args)
                    clock.spans[name] += time.perf_counter() - start
                    clock.counts[name] += 1
        wrapper.__wrapped__ = function
        return wrapper


def _trace_label(trace: Any) -> str:
    model = getattr(trace, "model", None)
    name = type(trace).__name__
    return f"{name}({model.model_name})" if model is not None and hasattr(model, "model_name") else name


def _instrument(clock: Clock) -> None:
    """Wrap the estimator's phases and every trace class's hooks with `clock`."""
    import fastestimator as fe
    from fastestimator.trace.trace import Trace

    import pipeline_vae.builders as builders
    import pipeline_vae.data as data

    for module, name in ((data, "load_data"), (builders, "get_estimator")):
        setattr(module, name, clock.timed(lambda *a, n=name: n, getattr(module, name)))
    fe.Estimator._warmup = clock.timed(lambda *a: "warmup", fe.Estimator._warmup)
    from fastestimator.network import TFNetwork

    def step_name(network, *args) -> str:
        mode = network.ctx_state["mode"]
        first = f"step:{mode}:first"
        return first if first not in clock.counts else f"step:{mode}"
    TFNetwork.run_step = clock.timed(step_name, TFNetwork.run_step)
    fe.Estimator._run_epoch = clock.timed(lambda est, *a: f"epoch:{est.system.mode}:{est.system.epoch_idx}",
                                          fe.Estimator._run_epoch)

    def classes(cls: type) -> List[type]:
        return [cls] + [c for sub in cls.__subclasses__() for c in classes(sub)]

    def wrap_traces() -> None:
        for cls in classes(Trace):
            for hook in HOOKS:
                if hook in vars(cls) and not hasattr(vars(cls)[hook], "__wrapped__"):
                    setattr(cls, hook, clock.timed(lambda trace, *a, h=hook: f"trace:{_trace_label(trace)}:{h}",
                                                   vars(cls)[hook], group="trace"))

    from tensorflow.python.autograph.impl import api as autograph_api  # where autograph converts a function
    autograph_api._convert_actual = clock.timed(
        lambda entity, *a: "autograph: " + ("the project's ops" if getattr(entity, "__module__", "").startswith(
            ("ops.", "pipeline_vae.")) else "FastEstimator's and other functions"), autograph_api._convert_actual,
        group="autograph")

    import gc
    started: Dict[str, float] = {}

    def collections(phase: str, info: Dict[str, Any]) -> None:  # full garbage collections: FE calls gc.collect()
        if info["generation"] == 2:
            if phase == "start":
                started["at"] = time.perf_counter()
            elif "at" in started:
                clock.spans["garbage collections (full)"] += time.perf_counter() - started.pop("at")
                clock.counts["garbage collections (full)"] += 1
    gc.callbacks.append(collections)

    prepare = fe.Estimator._prepare_traces

    def prepare_then_wrap(self, *args, **kwargs):
        wrap_traces()  # every Trace class is imported by now (FE's essentials, the project's, the trackers')
        return prepare(self, *args, **kwargs)
    fe.Estimator._prepare_traces = prepare_then_wrap


def measure(epochs: int, batch: int = 100, steps: Optional[int] = None, eval_steps: Optional[int] = None,
            extra: Sequence[str] = ()) -> Dict[str, Any]:
    """Run `pipeline-vae train --epochs EPOCHS` in an instrumented fresh process; where its wall time went.

    Returns:
        `phases` (seconds: interpreter, imports, data, building, first train and eval steps (tracing), training steps,
        eval steps, traces per epoch and once, the rest of the command, exit), `traces_per_epoch` (seconds per epoch
        by trace), `traces_once` (their on_begin and on_end by trace: the first sample grid, the GIF),
        `epoch_seconds` (an epoch's train and eval wall time, first steps excluded), `extras_share` (all traces'
        per-epoch work as a share of it), `train_epoch_seconds` (each training epoch, its first step excluded),
        `first_train_step_seconds`, `within_phases` (seconds of autograph conversion, the project's ops apart, and
        of full garbage collections, inside the phases above), `wall_seconds` and the raw `spans` and `counts`.

    Args:
        epochs: `--epochs`.
        batch: `--batch-size`.
        steps: `--train-steps-per-epoch` (None: all).
        eval_steps: `--eval-steps-per-epoch` (None: all).
        extra: More `pipeline-vae train` arguments (e.g. `--data FOLDER`).
    """
    import tempfile

    from benchmarks.whole_run import _env
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, "-m", "benchmarks.breakdown", "--epochs", str(epochs), "--batch-size", str(batch),
                   "--save-dir", os.path.join(work, "run")]
        command += [] if steps is None else ["--train-steps-per-epoch", str(steps)]
        command += [] if eval_steps is None else ["--eval-steps-per-epoch", str(eval_steps)]
        command += list(extra)
        launched = time.time()
        result = subprocess.run(command, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), env=_env(**{LAUNCH_ENV: repr(launched)}))
        wall = time.time() - launched
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"spans"')]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"breakdown run failed ({result.returncode}): {result.stderr[-1500:]}")
    spans, counts = json.loads(lines[-1])["spans"], json.loads(lines[-1])["counts"]
    hooks = {k: v for k, v in spans.items() if k.startswith("trace:")}
    per_run = sum(v for k, v in hooks.items() if k.endswith((":on_begin", ":on_end")))
    per_epoch_hooks = sum(hooks.values()) - per_run
    by_trace: Dict[str, float] = defaultdict(float)
    once: Dict[str, float] = defaultdict(float)
    for key, value in hooks.items():
        if key.endswith((":on_begin", ":on_end")):
            once[key.split(":")[1]] += value
        else:
            by_trace[key.split(":")[1]] += value / epochs
    train_epochs = [spans[f"epoch:train:{e}"] for e in range(1, epochs + 1) if f"epoch:train:{e}" in spans]
    train_epochs[0] -= spans.get("step:train:first", 0.0)  # the first step traces the graph
    train = sum(v for k, v in spans.items() if k.startswith("epoch:train:"))
    evaluation = sum(v for k, v in spans.items() if k.startswith("epoch:eval:"))
    first = spans.get("step:train:first", 0.0) + spans.get("step:eval:first", 0.0)
    phases = {
        "interpreter": spans["interpreter"],
        "imports (CLI, TensorFlow, FastEstimator, torch)": spans["import pipeline_vae.cli"] + spans[
            "import TensorFlow, FastEstimator, torch"],
        "data (read and check)": spans.get("load_data", 0.0),
        "building (get_estimator: models, traces, config)": spans.get("get_estimator", 0.0),
        "FE warm-up": spans.get("warmup", 0.0),
        "first train and eval steps (tracing)": first,
        "training steps": train - spans.get("step:train:first", 0.0) - per_epoch_hooks * train / max(
            train + evaluation, 1e-9),
        "eval steps": evaluation - spans.get("step:eval:first", 0.0) - per_epoch_hooks * evaluation / max(
            train + evaluation, 1e-9),
        "traces, per epoch (all hooks but on_begin/on_end)": per_epoch_hooks,
        "traces, once (on_begin, on_end: first grid, GIF)": per_run,
    }
    inside = sum(v for k, v in phases.items() if k not in ("interpreter", ))
    phases["rest of the command (fit set-up, summary, files)"] = spans["process until exit"] - spans[
        "interpreter"] - inside
    phases["exit"] = wall - spans["process until exit"]
    epoch_wall = (train + evaluation - first) / epochs
    within = {k: v for k, v in spans.items() if k.startswith("autograph: ") or k == "garbage collections (full)"}
    return {"wall_seconds": wall, "phases": phases, "within_phases": within, "traces_per_epoch": dict(by_trace),
            "traces_once": dict(once), "epoch_seconds": epoch_wall,
            "extras_share": per_epoch_hooks / epochs / epoch_wall,
            "train_epoch_seconds": train_epochs, "first_train_step_seconds": spans.get("step:train:first", 0.0),
            "spans": spans, "counts": counts}


def main(argv: List[str]) -> int:
    entered = time.time()
    launch = float(os.environ.get(LAUNCH_ENV, entered))
    clock = Clock()
    clock.spans["interpreter"] = entered - launch
    start = time.perf_counter()
    from pipeline_vae import cli
    clock.spans["import pipeline_vae.cli"] = time.perf_counter() - start
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start = time.perf_counter()
    import pipeline_vae.builders  # noqa: F401  TensorFlow, FastEstimator (and torch), the project's graph code
    clock.spans["import TensorFlow, FastEstimator, torch"] = time.perf_counter() - start
    _instrument(clock)
    start = time.perf_counter()
    code = cli.main(["train", *argv])
    clock.spans["command"] = time.perf_counter() - start
    clock.spans["process until exit"] = time.time() - launch  # exit itself is measured by the launcher
    print(json.dumps({"spans": clock.spans, "counts": clock.counts, "exit_code": code}), flush=True)
    getattr(cli, "exit_now", sys.exit)(code)  # as the console script ends (the launcher times the exit; older
    # commits had no exit_now)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
