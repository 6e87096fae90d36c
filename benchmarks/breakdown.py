"""Where a `pipeline-vae train` run's time goes, measured inside one fresh process that runs the CLI itself.

    python -m benchmarks.breakdown [--epochs 2] [--out FOLDER]

The process times, from its launch (the launching side passes its clock in `PIPELINE_VAE_BENCH_LAUNCH`; without it
the interpreter's start is not counted): the interpreter, importing the CLI, reading and checking the data,
importing TensorFlow/FastEstimator/torch, building the estimator (`get_estimator`: the two models through
`fe.build`, the traces, the config), FE's warm-up (tracing the train and eval steps), then every training and eval
epoch, and inside them each trace's hooks (every Trace class in the fit, FE's own included, wrapped at class level so
nested `super()` calls count once), and the rest of the command after the fit. It then runs the real
`pipeline_vae.cli.main(["train", ...])`, so the numbers are the command's.

Prints one JSON object (the last line of stdout) for `benchmarks.whole_run` and `benchmarks.bench` to read.
"""
import json
import os
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List

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
    fe.Estimator._run_epoch = clock.timed(lambda est, *a: f"epoch:{est.system.mode}", fe.Estimator._run_epoch)

    def classes(cls: type) -> List[type]:
        return [cls] + [c for sub in cls.__subclasses__() for c in classes(sub)]

    def wrap_traces() -> None:
        for cls in classes(Trace):
            for hook in HOOKS:
                if hook in vars(cls) and not hasattr(vars(cls)[hook], "__wrapped__"):
                    setattr(cls, hook, clock.timed(lambda trace, *a, h=hook: f"trace:{_trace_label(trace)}:{h}",
                                                   vars(cls)[hook], group="trace"))

    prepare = fe.Estimator._prepare_traces

    def prepare_then_wrap(self, *args, **kwargs):
        wrap_traces()  # every Trace class is imported by now (FE's essentials, the project's, the trackers')
        return prepare(self, *args, **kwargs)
    fe.Estimator._prepare_traces = prepare_then_wrap


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
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
