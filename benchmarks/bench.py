"""pipeline-vae benchmarks: the project against a raw TensorFlow loop, measured in one run.

    make bench                        # the full run (about 21 minutes on 2 cores); table + results/bench.json
    make bench-smoke                  # every path on tiny sizes (what the tests run), results in a temporary folder
    .venv/bin/python -m benchmarks.bench --only train,eval --rounds 3

Sections (`--only` picks some):
    train      training images/s: the project's `get_estimator(...).fit()` against a `tf.function` loop over `tf.data`
               (benchmarks/raw_tf.py) for the identical model, loss, optimizer and batch size, contenders alternating
               round by round; medians of windows after warm-up; plus levers: FE's own loader (NumpyDataset +
               torch DataLoader) instead of tf.data, preprocessing in the Pipeline (NumpyOps), a preprocessed float32
               dataset (cached), one backward pass for both models (JointGradientOp) instead of FE's per-model
               UpdateOps, XLA auto-clustering, XLA for the raw loop; the order rotates every round
    pipeline   FE's Pipeline alone (the loader, no model): images/s, to show whether loading is ever the bottleneck
    eval       test ELBO over the test set and the IW bound at K=1000: images/s (`pipeline_vae.metrics`)
    inference  CVAE.generate and CVAE.reconstruct images/s at batch 1, 64 and 1024
    process    fresh processes: start-up (process start to the first trained step), peak RSS of training and of the
               K=1000 evaluation, and the thread-setting lever (TF intra/inter-op threads)
    quality    time to quality: wall-clock seconds (training + per-epoch test evaluation) until the test ELBO first
               reaches -156 nats at latent 2: the project's default preset against the TensorFlow tutorial's own
               settings (batch 32, Adam 1e-4) in the raw loop (and, with --quality-tutorial-project, the project run
               with the tutorial's settings)
    whole_run  whole processes as a user times them: `pipeline-vae train --epochs E` (every default output on)
               against the plain loop (benchmarks/raw_tf.py as its own process, its own test ELBO every epoch), 1 and
               5 epochs, pairs alternating: wall-time ratio and peak RSS (benchmarks/whole_run.py)
    breakdown  where a `pipeline-vae train` run's time goes: interpreter, imports, data, building, first steps
               (tracing), training, eval, every trace's hooks per epoch, exit (benchmarks/breakdown.py)
    startup    seconds until the CLI answers bad input (a wrong --data, a bad flag, a missing run folder, a missing
               or malformed spec, an unusable tracking URI) and --help, each a fresh process
    folder     users' own images: a folder of MNIST as PNG files: decoded images/s of the tf.data pipeline alone
               against the training images/s of `pipeline-vae train --data FOLDER`, and its first epoch against
               the later ones

Timings are never asserted; the machine is shared, so look at medians and ratios measured in the same run.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SECTIONS = ("train", "pipeline", "eval", "inference", "process", "quality", "whole_run", "breakdown", "startup",
            "folder")
TARGET_ELBO = -156.0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> Dict[str, Any]:
    """The machine line of the report."""
    import tensorflow as tf
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "gpus": len(tf.config.list_physical_devices("GPU")),
            "load_average_at_start": round(os.getloadavg()[0], 2)}


def windows(times: List[float], batch: int, skip: int, window: int) -> List[float]:
    """images/s over consecutive windows of `window` steps, after the first `skip` steps."""
    times = times[skip:]
    return [window * batch / (times[i + window] - times[i]) for i in range(0, len(times) - window, window)]


def _median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------------------------------------- train
class _Contenders:
    """Builds and runs each training contender for `steps` steps, returning per-step end times."""
    def __init__(self, data, batch: int, steps: int, work_dir: str) -> None:
        self.data, self.batch, self.steps, self.work_dir = data, batch, steps, work_dir

    def project(self, loader: str = "tf.data", pipeline_ops: bool = False, cached: bool = False, xla: bool = False,
                joint_gradient: bool = False) -> List[float]:
        """The project's training path: `get_estimator(...)` as users call it, optionally with one lever changed."""
        import fastestimator as fe
        import numpy as np
        import tensorflow as tf
        from fastestimator.op.numpyop.univariate import Binarize as NumpyBinarize
        from fastestimator.trace.trace import Trace

        from pipeline_vae.builders import get_estimator, get_pipeline
        from pipeline_vae.slots import build_graph

        class StepTimes(Trace):
            def __init__(self) -> None:
                super().__init__(mode="train")
                self.times: List[float] = []

            def on_batch_end(self, data) -> None:
                self.times.append(time.perf_counter())

        ops = {"rescale": None, "binarize": None} if (pipeline_ops or cached) else None
        tf.config.optimizer.set_jit("autoclustering" if xla else False)
        try:
            est = get_estimator(epochs=1, batch_size=self.batch, train_steps_per_epoch=self.steps,
                                eval_steps_per_epoch=1, data=self.data, log_steps=None, ops=ops,
                                save_dir=tempfile.mkdtemp(dir=self.work_dir))
            if pipeline_ops or loader == "fe":
                numpy_ops = [NumpyBinarize(threshold=128, inputs="x", outputs="x")] if pipeline_ops else []
                est.system.pipeline = get_pipeline(self.batch, self.data, ops=numpy_ops, loader="fe")
            if cached:
                x = (self.data.x_train[..., None] >= 128).astype(np.float32)
                train = tf.data.Dataset.from_tensor_slices({"x": x}).shuffle(len(x)).batch(self.batch)
                est.system.pipeline = fe.Pipeline(train_data=train.prefetch(tf.data.AUTOTUNE),
                                                  eval_data=tf.data.Dataset.from_tensor_slices({"x": x[:100]}).batch(
                                                      self.batch))
            if joint_gradient:  # one backward pass for both models, gradients handed to the UpdateOps
                graph = build_graph(latent_dim=2, learning_rate=1e-3, ops=ops, joint_update=True)
                est.system.network = fe.Network(ops=graph.ops)
            timer = StepTimes()
            est.traces.append(timer)
            est.fit(warmup=False)
        finally:
            tf.config.optimizer.set_jit(False)
        return timer.times

    def raw(self, jit_compile: bool = False) -> List[float]:
        from benchmarks.raw_tf import RawCVAE, run_steps, train_dataset
        model = RawCVAE(jit_compile=jit_compile)
        return run_steps(model, train_dataset(self.data.x_train, self.batch), self.steps)


def bench_train(data, args, work_dir: str, say: Callable[[str], None]) -> Dict[str, Any]:
    contenders = _Contenders(data, args.batch, args.steps, work_dir)
    runs: Dict[str, Callable[[], List[float]]] = {
        "project": contenders.project,
        "raw_tf_loop": contenders.raw,
        "project_fe_loader": lambda: contenders.project(loader="fe"),
        "project_numpyops_in_pipeline": lambda: contenders.project(pipeline_ops=True),
        "project_cached_float32": lambda: contenders.project(cached=True),
        "project_joint_gradient": lambda: contenders.project(joint_gradient=True),
        "project_xla_autoclustering": lambda: contenders.project(xla=True),
        "raw_tf_loop_xla": lambda: contenders.raw(jit_compile=True),
    }
    rates: Dict[str, List[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_index in range(args.rounds):
        # Rotate the order every round, so no contender always runs first (or right after the same neighbour).
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            window_rates = windows(runs[name](), args.batch, args.skip, args.window)
            rates[name].append(_median(window_rates))
        say(f"  train round {round_index + 1}/{args.rounds}: " +
            ", ".join(f"{name} {values[-1]:.0f}" for name, values in rates.items()))
    medians = {name: _median(values) for name, values in rates.items()}
    # Each round's contenders ran back to back, so a per-round ratio cancels the machine's slow drifts.
    paired = {name: _median([a / b for a, b in zip(values, rates["raw_tf_loop"])]) for name, values in rates.items()}
    return {"images_per_s_by_round": rates, "median_images_per_s": medians,
            "median_ratio_to_raw_by_round": paired, "ratio_project_over_raw": paired["project"],
            "batch_size": args.batch, "steps_per_run": args.steps, "warmup_steps": args.skip,
            "window_steps": args.window}


# ------------------------------------------------------------------------------------------------------ pipeline
def bench_pipeline(data, args, say: Callable[[str], None]) -> Dict[str, Any]:
    from pipeline_vae.builders import get_pipeline
    pipeline = get_pipeline(batch_size=args.batch, data=data)
    steps = args.steps
    rates = []
    for _ in range(args.rounds):
        with pipeline(mode="train", epoch=1, steps_per_epoch=steps) as loader:
            times = []
            for _batch in loader:
                times.append(time.perf_counter())
        rates.append(_median(windows(times, args.batch, args.skip, args.window)))
    say(f"  pipeline alone: {', '.join(f'{r:.0f}' for r in rates)} images/s")
    return {"images_per_s_by_round": rates, "median_images_per_s": _median(rates)}


# ---------------------------------------------------------------------------------------------------------- eval
def _trained_vae(data, work_dir: str, steps: int):
    """A briefly trained latent-2 CVAE (weights only matter for realism, not for speed)."""
    from pipeline_vae.builders import get_estimator
    from pipeline_vae.inference import CVAE
    save_dir = os.path.join(work_dir, "trained")
    get_estimator(epochs=1, train_steps_per_epoch=steps, eval_steps_per_epoch=2, data=data, log_steps=None,
                  save_dir=save_dir).fit(warmup=False)
    return CVAE.load(save_dir)


def bench_eval(vae, data, args, say: Callable[[str], None]) -> Dict[str, Any]:
    from pipeline_vae.metrics import evaluate, iw_bound
    x_test = data.x_test[:args.eval_images]
    elbo_rates, iw_rates = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        evaluate(vae, x_test, iw_samples=0, show_progress=False)
        elbo_rates.append(len(x_test) / (time.perf_counter() - start))
        images = data.x_test[:args.iw_images]
        start = time.perf_counter()
        iw_bound(vae, images, k=args.iw_k)
        iw_rates.append(len(images) / (time.perf_counter() - start))
    say(f"  test ELBO: {_median(elbo_rates):.0f} images/s; IW K={args.iw_k}: {_median(iw_rates):.2f} images/s")
    return {"elbo_images_per_s": _median(elbo_rates), "elbo_images": len(x_test),
            "iw_images_per_s": _median(iw_rates), "iw_k": args.iw_k, "iw_images": args.iw_images,
            "iw_minutes_for_10k_images": 10000 / _median(iw_rates) / 60}


# ----------------------------------------------------------------------------------------------------- inference
def bench_inference(vae, data, args, say: Callable[[str], None]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for batch in args.inference_batches:
        images = data.x_test[:batch]
        for name, call in (("generate", lambda: vae.generate(batch, seed=0)), ("reconstruct",
                                                                                 lambda: vae.reconstruct(images))):
            call()  # trace
            repeats = max(3, min(200, args.inference_images // batch))
            timings = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                timings.append(time.perf_counter() - start)
            out[f"{name}_batch_{batch}_images_per_s"] = batch / _median(timings)
    say("  inference: " + ", ".join(f"{k.replace('_images_per_s', '')} {v:.0f}/s" for k, v in out.items()))
    return out


# ------------------------------------------------------------------------------------------------------- process
def _child(kind: str, args, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Run `python -m benchmarks.bench --child KIND` in a fresh process; returns its JSON line, plus start-up."""
    command = [sys.executable, "-m", "benchmarks.bench", "--child", kind, "--batch", str(args.batch),
               "--steps", str(args.steps), "--skip", str(args.skip), "--window", str(args.window), "--iw-k",
               str(args.iw_k), "--iw-images", str(args.iw_images)]
    launched = time.time()
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child {kind} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    out = json.loads(lines[-1])
    if "first_step_at" in out:
        out["startup_seconds"] = out.pop("first_step_at") - launched
    return out


def bench_process(args, say: Callable[[str], None]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"train": _child("train", args), "raw_train": _child("raw_train", args),
                           "iw": _child("iw", args)}
    threads = {"default": out["train"]["images_per_s"]}
    settings = (("intra2_inter1", 2, 1), ) if args.smoke else (("intra2_inter1", 2, 1), ("intra1_inter1", 1, 1),
                                                                ("intra2_inter2", 2, 2))
    for label, intra, inter in settings:
        threads[label] = _child("train", args, {"PIPELINE_VAE_BENCH_THREADS": f"{intra},{inter}"})["images_per_s"]
    out["threads_images_per_s"] = threads
    say(f"  start-up to first trained step: project {out['train']['startup_seconds']:.1f} s, raw loop "
        f"{out['raw_train']['startup_seconds']:.1f} s; peak RSS: training {out['train']['peak_rss_mb']:.0f} MB "
        f"(from {out['train']['rss_before_mb']:.0f} MB after imports and data), "
        f"IW K={args.iw_k} {out['iw']['peak_rss_mb']:.0f} MB; threads: " +
        ", ".join(f"{k} {v:.0f}" for k, v in threads.items()))
    return out


def _memory_mb() -> Dict[str, float]:
    """This process's current and peak resident set size (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/status") as file:
            fields = dict(line.split(":", 1) for line in file if ":" in line)
        return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "peak": int(fields["VmHWM"].split()[0]) / 1024}
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"rss": float("nan"), "peak": peak}


def _reset_peak_memory() -> bool:
    """Start a new peak-RSS window (Linux >= 4.0: writing 5 to /proc/self/clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def run_child(kind: str, args) -> None:
    """The body of a fresh benchmark process; prints one JSON line."""
    threads = os.environ.get("PIPELINE_VAE_BENCH_THREADS")
    import tensorflow as tf
    if threads:
        intra, inter = (int(v) for v in threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import fastestimator as fe
    fe.record_history(False)
    fe.estimator.draw = lambda: None
    from pipeline_vae.data import load_mnist
    data = load_mnist()
    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work_dir:
        contenders = _Contenders(data, args.batch, args.steps, work_dir)
        vae = _trained_vae(data, work_dir, steps=5) if kind == "iw" else None
        out["rss_before_mb"] = _memory_mb()["rss"]  # imports, data (and for "iw" a model) loaded
        out["peak_is_phase_only"] = _reset_peak_memory()
        if kind in ("train", "raw_train"):
            times = contenders.project() if kind == "train" else contenders.raw()
            out["first_step_at"] = time.time() - (time.perf_counter() - times[0])
            out["images_per_s"] = _median(windows(times, args.batch, args.skip, args.window))
        elif kind == "iw":
            from pipeline_vae.metrics import iw_bound
            iw_bound(vae, data.x_test[:args.iw_images], k=args.iw_k)
        out["peak_rss_mb"] = _memory_mb()["peak"]
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------------------------------- quality
def bench_quality(data, args, work_dir: str, say: Callable[[str], None]) -> Dict[str, Any]:
    """Seconds (training + per-epoch test evaluation) to the first test ELBO >= the target."""
    from fastestimator.trace.trace import Trace

    from benchmarks.raw_tf import RawCVAE, test_dataset, train_dataset
    from pipeline_vae.builders import METRIC, get_estimator

    def project(batch: int, lr: float) -> Dict[str, Any]:
        class Clock(Trace):
            def __init__(self) -> None:
                super().__init__(mode="eval", inputs=METRIC)
                self.curve: List[List[float]] = []

            def on_epoch_end(self, data) -> None:
                self.curve.append([time.perf_counter() - start, float(data[METRIC])])
                if float(data[METRIC]) >= args.target:
                    self.system.stop_training = True

        est = get_estimator(epochs=args.quality_epochs, batch_size=batch, learning_rate=lr, data=data, log_steps=None,
                            seed=0, save_dir=os.path.join(work_dir, f"quality_{batch}"),
                            train_steps_per_epoch=args.quality_steps)
        clock = Clock()
        est.traces.append(clock)
        start = time.perf_counter()
        est.fit(warmup=False)
        return _reached(clock.curve)

    def raw(batch: int, lr: float) -> Dict[str, Any]:
        import tensorflow as tf
        tf.keras.utils.set_random_seed(0)
        model = RawCVAE(learning_rate=lr)
        train, test = train_dataset(data.x_train, batch), test_dataset(data.x_test, batch)
        curve, start = [], time.perf_counter()
        for _ in range(args.quality_epochs):
            for step, x in enumerate(train):
                if args.quality_steps and step >= args.quality_steps:
                    break
                model.train_step(x)
            curve.append([time.perf_counter() - start, model.test_elbo(test)])
            if curve[-1][1] >= args.target:
                break
        return _reached(curve)

    def _reached(curve: List[List[float]]) -> Dict[str, Any]:
        hits = [seconds for seconds, elbo in curve if elbo >= args.target]
        return {"seconds_to_target": hits[0] if hits else None, "epochs_to_target": len(curve) if hits else None,
                "curve_seconds_elbo": curve}

    out = {"target_elbo": args.target, "max_epochs": args.quality_epochs,
           "project_default_batch100_lr1e-3": project(100, 1e-3),
           "raw_tf_loop_tutorial_batch32_lr1e-4": raw(32, 1e-4)}
    if args.quality_tutorial_project:
        out["project_tutorial_settings_batch32_lr1e-4"] = project(32, 1e-4)
    for name, result in out.items():
        if isinstance(result, dict):
            reached = result["seconds_to_target"]
            say(f"  {name}: " + (f"{reached:.0f} s ({result['epochs_to_target']} epochs)" if reached is not None else
                                 f"not reached in {len(result['curve_seconds_elbo'])} epochs"))
    return out


# ----------------------------------------------------------------------------------------------- whole processes
def bench_whole_run(args, say: Callable[[str], None]) -> Dict[str, Any]:
    """`python -m benchmarks.whole_run` as its own small process: a child's peak RSS (`wait4`) counts the memory it
    shared with its parent when it was forked, so the contenders must not be forked from this large process."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "benchmarks.whole_run", "--epochs", ",".join(map(str, args.whole_run_epochs)),
                   "--pairs", str(args.pairs), "--batch", str(args.batch), "--out", out]
        command += ["--steps", "5", "--eval-steps", "2"] if args.smoke else []
        env = {k: v for k, v in os.environ.items() if k != "TF_DETERMINISTIC_OPS"}
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) as proc:
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("  "):
                    say(line.rstrip())
        if proc.returncode != 0:
            raise RuntimeError(f"benchmarks.whole_run failed ({proc.returncode}): {''.join(lines)[-1500:]}")
        with open(os.path.join(out, "whole_run.json")) as file:
            return json.load(file)["results"]


def bench_breakdown(args, say: Callable[[str], None]) -> Dict[str, Any]:
    from benchmarks.breakdown import measure
    caps = dict(steps=5, eval_steps=2) if args.smoke else {}
    out = measure(args.breakdown_epochs, args.batch, **caps)
    say(f"  {args.breakdown_epochs} epochs, {out['wall_seconds']:.1f} s: " +
        ", ".join(f"{name} {seconds:.2f} s" for name, seconds in out["phases"].items()))
    say("  within those: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in out["within_phases"].items()))
    say(f"  traces per epoch: {100 * out['extras_share']:.2f}% of an epoch's {out['epoch_seconds']:.1f} s (" +
        ", ".join(f"{name} {1000 * seconds:.0f} ms" for name, seconds in sorted(
            out["traces_per_epoch"].items(), key=lambda item: -item[1])) + ")")
    return out


STARTUP_CASES = (
    ("--help", ["--help"]),
    ("train --data missing.npz", ["train", "--data", "{tmp}/missing.npz", "--save-dir", "{tmp}/run"]),
    ("train --epochs 0", ["train", "--epochs", "0"]),
    ("train --tracking-uri in a missing folder", ["train", "--track", "mlflow", "--tracking-uri",
                                                  "sqlite:///{tmp}/no/such/x.db", "--save-dir", "{tmp}/run"]),
    ("evaluate a missing run folder", ["evaluate", "--save-dir", "{tmp}/no_run"]),
    ("ablate a missing spec", ["ablate", "{tmp}/missing.yaml"]),
    ("ablate a malformed spec", ["ablate", "{tmp}/bad.yaml"]),
)


def bench_startup(args, say: Callable[[str], None]) -> Dict[str, Any]:
    """Seconds from launch to exit of the CLI given bad input (and --help), each a fresh process."""
    from benchmarks.whole_run import _run, cli
    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "bad.yaml"), "w") as file:
            file.write("name: x\nbudget: {epochs: 0}\nvariants: [{name: a}]\n")
        for label, argv in STARTUP_CASES:
            wall, _, text, code = _run([cli(), *[a.format(tmp=tmp) for a in argv]])
            if (code == 0) != (label == "--help"):
                raise RuntimeError(f"startup case {label!r} exited {code}: {text[-500:]}")
            out[label] = round(wall, 3)
    say("  " + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in out.items()))
    return out


def _write_png_folder(data, root: str, n_train: int, n_test: int) -> None:
    from PIL import Image
    for split, images in (("train", data.x_train[:n_train]), ("test", data.x_test[:n_test])):
        os.makedirs(os.path.join(root, split))
        for i, image in enumerate(images):
            Image.fromarray(image).save(os.path.join(root, split, f"{i:05d}.png"))


def bench_folder(data, args, say: Callable[[str], None]) -> Dict[str, Any]:
    """A folder of MNIST PNGs: decoding alone against training from it."""
    from benchmarks.breakdown import measure
    from pipeline_vae.data import DataSource, load_data
    from pipeline_vae.data.pipeline import datasets
    out: Dict[str, Any] = {"train_images": args.folder_images, "test_images": args.folder_images // 6}
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "pngs")
        start = time.perf_counter()
        _write_png_folder(data, root, out["train_images"], out["test_images"])
        out["write_seconds"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        folder = load_data(DataSource(root))  # lists the files and checks every one (header and structure)
        out["check_seconds"] = round(time.perf_counter() - start, 2)
        train, _ = datasets(folder, args.batch)
        rates = []
        for _ in range(2):  # the second pass: the tf.data pipeline built and warm
            start = time.perf_counter()
            n = sum(int(batch["x"].shape[0]) for batch in train)
            rates.append(n / (time.perf_counter() - start))
        out["decode_images_per_s"] = [round(r) for r in rates]
        run = measure(args.folder_epochs, args.batch, extra=["--data", root])
    seconds = run["train_epoch_seconds"]
    out["run_wall_seconds"] = round(run["wall_seconds"], 1)
    out["train_epoch_seconds"] = [round(s, 2) for s in seconds]
    out["first_train_step_seconds"] = round(run["first_train_step_seconds"], 2)
    out["train_images_per_s"] = [round(out["train_images"] / s) for s in seconds]
    out["first_epoch_over_later"] = round(seconds[0] / statistics.median(seconds[1:]), 3)
    out["decode_over_training"] = round(min(rates) / statistics.median(out["train_images_per_s"]), 2)
    say(f"  {out['train_images']} PNGs: written in {out['write_seconds']} s, checked in {out['check_seconds']} s; "
        f"decoded alone {out['decode_images_per_s']} images/s; training from them {out['train_images_per_s']} "
        f"images/s (each epoch's training steps; the first step, {out['first_train_step_seconds']} s, traces the "
        f"graph); first epoch / later {out['first_epoch_over_later']:.3f}")
    return out


# ---------------------------------------------------------------------------------------------------------- main
def table(results: Dict[str, Any]) -> str:
    """The headline numbers as a text table."""
    rows = []
    train = results.get("train")
    if train:
        med = train["median_images_per_s"]
        rows.append(("training, project (get_estimator().fit())", f"{med['project']:.0f} images/s"))
        rows.append(("training, raw tf.function loop over tf.data", f"{med['raw_tf_loop']:.0f} images/s"))
        rows.append(("ratio project / raw loop (median of per-round ratios)", f"{train['ratio_project_over_raw']:.3f}"))
        paired = train["median_ratio_to_raw_by_round"]
        for name in ("project_fe_loader", "project_numpyops_in_pipeline", "project_cached_float32",
                     "project_joint_gradient", "project_xla_autoclustering", "raw_tf_loop_xla"):
            rows.append((f"  lever: {name}", f"{med[name]:.0f} images/s ({paired[name]:.3f} of the raw loop)"))
    if "pipeline" in results:
        rows.append(("FE Pipeline alone (loader)", f"{results['pipeline']['median_images_per_s']:.0f} images/s"))
    if "eval" in results:
        ev = results["eval"]
        rows.append((f"test ELBO ({ev['elbo_images']} images)", f"{ev['elbo_images_per_s']:.0f} images/s"))
        rows.append((f"IW bound K={ev['iw_k']}", f"{ev['iw_images_per_s']:.2f} images/s "
                     f"({ev['iw_minutes_for_10k_images']:.0f} min for 10k)"))
    for key, value in results.get("inference", {}).items():
        rows.append((key.replace("_images_per_s", "").replace("_", " "), f"{value:.0f} images/s"))
    if "process" in results:
        pr = results["process"]
        rows.append(("start-up to first trained step, project", f"{pr['train']['startup_seconds']:.1f} s"))
        rows.append(("start-up to first trained step, raw loop", f"{pr['raw_train']['startup_seconds']:.1f} s"))
        for label, key in (("training (project)", "train"), ("training (raw loop)", "raw_train"),
                           (f"IW bound K={results['settings']['iw_k']}", "iw")):
            rows.append((f"peak RSS, {label}", f"{pr[key]['peak_rss_mb']:.0f} MB (before: "
                         f"{pr[key]['rss_before_mb']:.0f} MB)"))
        for label, value in pr["threads_images_per_s"].items():
            rows.append((f"  lever: TF threads {label}", f"{value:.0f} images/s"))
    if "quality" in results:
        for name, result in results["quality"].items():
            if isinstance(result, dict):
                reached = result["seconds_to_target"]
                rows.append((f"time to {results['quality']['target_elbo']:.0f} nats: {name}",
                             f"{reached:.0f} s ({result['epochs_to_target']} epochs)" if reached is not None else
                             f"not reached in {len(result['curve_seconds_elbo'])} epochs"))
    for epochs, result in results.get("whole_run", {}).items():
        rows.append((f"whole run, {epochs} epoch(s): project / plain loop wall time (median of {len(result['pairs'])})",
                     f"{result['median_ratio']:.3f} ({result['min_ratio']:.3f}-{result['max_ratio']:.3f}); "
                     f"{result['median_project_wall_seconds']:.1f} s / {result['median_raw_wall_seconds']:.1f} s"))
        rows.append((f"  peak RSS project / plain loop ({epochs} epoch(s))",
                     f"{result['median_project_peak_rss_mib']:.0f} / {result['median_raw_peak_rss_mib']:.0f} MiB "
                     f"({result['median_rss_ratio']:.3f})"))
    if "breakdown" in results:
        bd = results["breakdown"]
        for name, seconds in bd["phases"].items():
            rows.append((f"breakdown: {name}", f"{seconds:.2f} s"))
        for name, seconds in bd["within_phases"].items():
            rows.append((f"  within: {name}", f"{seconds:.2f} s"))
        rows.append(("breakdown: traces per epoch / epoch wall time", f"{100 * bd['extras_share']:.2f}% of "
                     f"{bd['epoch_seconds']:.1f} s"))
        for name, seconds in sorted(bd["traces_per_epoch"].items(), key=lambda item: -item[1]):
            rows.append((f"  trace {name}, per epoch", f"{1000 * seconds:.1f} ms"))
    for label, seconds in results.get("startup", {}).items():
        rows.append((f"start-up: pipeline-vae {label}", f"{seconds:.2f} s"))
    if "folder" in results:
        fo = results["folder"]
        rows.append((f"folder of {fo['train_images']} PNGs: decoded alone", f"{max(fo['decode_images_per_s'])} "
                     f"images/s (passes: {fo['decode_images_per_s']})"))
        rows.append(("folder: training from it, per epoch (first step left out)", f"{fo['train_images_per_s']} "
                     "images/s"))
        rows.append(("folder: first epoch / later epochs", f"{fo['first_epoch_over_later']:.3f}"))
        rows.append(("folder: files checked at start", f"{fo['check_seconds']:.1f} s"))
    width = max(len(name) for name, _ in rows) if rows else 0
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every path in well under a minute")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--out", default="benchmarks/results", help="folder for bench.json (bench-smoke.json)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per contender")
    parser.add_argument("--steps", type=int, default=300, help="training steps per contender run")
    parser.add_argument("--skip", type=int, default=50, help="warm-up steps left out of the timing")
    parser.add_argument("--window", type=int, default=50, help="steps per timing window")
    parser.add_argument("--batch", type=int, default=100, help="batch size of the training contenders")
    parser.add_argument("--eval-images", type=int, default=10000)
    parser.add_argument("--iw-k", type=int, default=1000)
    parser.add_argument("--iw-images", type=int, default=100)
    parser.add_argument("--inference-images", type=int, default=20000, help="images per timing of each batch size")
    parser.add_argument("--quality-epochs", type=int, default=12)
    parser.add_argument("--quality-steps", type=int, default=None, help="cap on steps per epoch in `quality`")
    parser.add_argument("--target", type=float, default=TARGET_ELBO)
    parser.add_argument("--quality-tutorial-project", action="store_true",
                        help="also time the project with the tutorial's settings (batch 32, Adam 1e-4)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs per epoch count in `whole_run`")
    parser.add_argument("--whole-run-epochs", default="1,5", help="epoch counts of `whole_run` (default 1,5)")
    parser.add_argument("--breakdown-epochs", type=int, default=3)
    parser.add_argument("--folder-images", type=int, default=60000, help="training PNGs in `folder` (test: 1/6)")
    parser.add_argument("--folder-epochs", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.inference_batches = (1, 64, 1024)
    if args.smoke:
        args.rounds, args.steps, args.skip, args.window = 1, 12, 2, 4
        args.eval_images, args.iw_k, args.iw_images, args.inference_images = 200, 10, 20, 64
        args.inference_batches = (1, 64)
        args.quality_epochs, args.quality_steps, args.target = 1, 5, -1000.0
        args.pairs, args.whole_run_epochs, args.breakdown_epochs = 1, "1", 2
        args.folder_images = 300
    args.whole_run_epochs = [int(e) for e in str(args.whole_run_epochs).split(",")]
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; expected {', '.join(SECTIONS)}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args)
        return 0

    def say(text: str) -> None:
        print(text, flush=True)

    import fastestimator as fe
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    fe.record_history(False)
    fe.estimator.draw = lambda: None  # FE's ASCII banner, once per fit
    from pipeline_vae.atomic import write_json_atomic
    from pipeline_vae.data import load_mnist
    data = load_mnist()
    sections = args.only.split(",")
    settings = {k: v for k, v in vars(args).items() if k not in ("child", )}
    results: Dict[str, Any] = {"machine": machine(), "settings": settings,
                               "command": "python -m benchmarks.bench " + " ".join(sys.argv[1:] if argv is None
                                                                                   else argv)}
    say(f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{results['machine']['gpus']} GPUs, load {results['machine']['load_average_at_start']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        if "train" in sections:
            say("train: contenders alternating")
            results["train"] = bench_train(data, args, work_dir, say)
        if "pipeline" in sections:
            say("pipeline:")
            results["pipeline"] = bench_pipeline(data, args, say)
        if "eval" in sections or "inference" in sections:
            vae = _trained_vae(data, work_dir, steps=args.steps)
            if "eval" in sections:
                say("eval:")
                results["eval"] = bench_eval(vae, data, args, say)
            if "inference" in sections:
                say("inference:")
                results["inference"] = bench_inference(vae, data, args, say)
        if "process" in sections:
            say("process: fresh processes")
            results["process"] = bench_process(args, say)
        if "quality" in sections:
            say(f"quality: seconds to a test ELBO of {args.target} nats")
            results["quality"] = bench_quality(data, args, work_dir, say)
        if "whole_run" in sections:
            say("whole_run: pipeline-vae train against the plain loop, whole processes in alternation")
            results["whole_run"] = bench_whole_run(args, say)
        if "breakdown" in sections:
            say("breakdown: one pipeline-vae train run, instrumented")
            results["breakdown"] = bench_breakdown(args, say)
        if "startup" in sections:
            say("startup: seconds until the CLI answers bad input")
            results["startup"] = bench_startup(args, say)
        if "folder" in sections:
            say("folder: a folder of PNGs")
            results["folder"] = bench_folder(data, args, say)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    path = os.path.join(args.out, "bench-smoke.json" if args.smoke else "bench.json")
    write_json_atomic(path, results)
    say("\n" + table(results))
    say(f"\n{results['seconds']:.0f} s; results in {path}")
    import gc
    gc.collect()  # free TF functions now, not during interpreter shutdown (which prints spurious errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
