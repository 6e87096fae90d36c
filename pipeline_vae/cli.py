"""The `pipeline-vae` command line: `data`, `train`, `evaluate`, `plot`, `explore`, `export` and `ablate`.

Errors in user input print one line, `pipeline-vae: error: ...`, and exit non-zero; `--debug` shows the traceback.
"""
import argparse
import atexit
import gc
import os
import re
import sys
import threading
import time
import traceback
from typing import Any, Callable, List, NoReturn, Optional

from pipeline_vae import settings
from pipeline_vae.ablation import RunFailed
from pipeline_vae.run_config import CONFIG_FILE, FIGURE_DPI, FIGURE_FORMATS, FILES, iw_progress_file
from pipeline_vae.run_lock import RunLockedError

#: Exit codes: bad usage or input (argparse uses 2 too), failure while running, interrupted.
EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130
#: Errors that are the user's input or environment, shown as one line (an ImportError names the missing extra).
#: Anything else is a bug: full traceback.
USER_ERRORS = (ValueError, TypeError, OSError, ImportError)


def _count(minimum: int) -> Any:
    """An argparse type for integers >= `minimum` (flags of evaluate and plot, which are not run settings)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _quiet_tensorflow() -> None:
    """Silence TF's Python WARNING logs (retracing notices); its C++ start-up lines are silenced in `main`."""
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")


def cmd_data(args: argparse.Namespace) -> int:
    from pipeline_vae.data import KERAS_SETS, load_data, load_mnist
    if args.data in KERAS_SETS:
        found = load_data(args.data)
        print(f"{args.data} OK: {found.summary()}")
        return 0
    data = load_mnist(path=args.data, cache=args.cache)
    print(f"MNIST OK: {len(data.x_train)} train / {len(data.x_test)} test uint8 images, verified, at {data.source}")
    return 0


#: What a training run writes into its save_dir (what `train --fresh` removes; anything else there is left alone).
RUN_FILES = tuple(FILES.values()) + (CONFIG_FILE, )


def _clear_run(save_dir: str) -> List[str]:
    """Remove the files of a previous run from `save_dir`; returns their names."""
    import shutil
    removed = []
    for name in RUN_FILES:
        path = os.path.join(save_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed.append(name)
    return removed


def _tracking_uri(args: argparse.Namespace) -> Optional[str]:
    """--tracking-uri checked (and made absolute) before TensorFlow is imported; it needs --track mlflow."""
    from pipeline_vae.tracking import check_tracking_uri
    if args.tracking_uri is not None and "mlflow" not in (args.track or ()):
        raise ValueError("--tracking-uri is for --track mlflow")
    return check_tracking_uri(args.tracking_uri) if "mlflow" in (args.track or ()) else None


def _loggers(args: argparse.Namespace, uri: Optional[str]) -> List[Any]:
    """The train command's trackers (FE traces), each ending its run when training ends."""
    from pipeline_vae.tracking import MLflowLogger, WandbLogger
    loggers: List[Any] = []
    for tool in dict.fromkeys(args.track or ()):
        if tool == "mlflow":
            loggers.append(MLflowLogger(args.save_dir, tracking_uri=uri, experiment=args.experiment, finish=False))
        else:
            loggers.append(WandbLogger(args.save_dir, project=args.experiment, finish=False))
    return loggers


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline_vae.data import load_data
    from pipeline_vae.resolve import DATA_SETTINGS, resolve
    uri = _tracking_uri(args)
    data = load_data(_data_source(args))  # checked (and MNIST or a Keras set fetched) before the folder is touched
    resume = args.seed is None and not args.no_resume
    # The flags are the run settings by name (the data ones are in `data` already): resolved as `get_estimator`
    # resolves its keywords, before TensorFlow is imported, so a bad combination answers at once.
    flags = {name: getattr(args, name) for name in settings.SETTINGS if name in vars(args)}
    config, data = resolve({**{k: v for k, v in flags.items() if k not in DATA_SETTINGS}, "resume": resume}, data)
    if resume and not args.fresh:  # a checkpoint this user's pipeline-vae did not write is refused now, in one line
        from pipeline_vae.signing import verify_checkpoint
        from pipeline_vae.train_log import read_log
        if verify_checkpoint(os.path.join(args.save_dir, FILES["checkpoint"])) and os.path.isfile(
                os.path.join(args.save_dir, FILES["log"])):
            read_log(os.path.join(args.save_dir, FILES["log"]))  # the rows a resumed run keeps: damaged, said now
    _quiet_tensorflow()
    import tensorflow as tf

    from pipeline_vae.builders import METRIC, build_estimator
    from pipeline_vae.resume import CHECKPOINT_DIR, last_checkpoint_epoch
    from pipeline_vae.run_lock import RunLock
    from pipeline_vae.traces import StopOnNaN
    gc.freeze()  # the modules just imported live as long as the process: FE's gc.collect() calls need not walk them
    checkpoints = os.path.join(args.save_dir, CHECKPOINT_DIR)
    with RunLock(args.save_dir) as lock:
        if lock.took_over:
            print(f"pipeline-vae: {args.save_dir} was locked by a process that no longer runs (pid "
                  f"{lock.took_over}); taking over", file=sys.stderr)
        if args.fresh:
            removed = _clear_run(args.save_dir)
            print(f"pipeline-vae: --fresh: removed {', '.join(removed) if removed else 'nothing'} from "
                  f"{args.save_dir}")
        elif resume and last_checkpoint_epoch(checkpoints):
            print(f"pipeline-vae: resuming from the checkpoint after epoch {last_checkpoint_epoch(checkpoints)} in "
                  f"{checkpoints} (--fresh starts over)")
        loggers = _loggers(args, uri)
        estimator = build_estimator(config, data, save_dir=args.save_dir, traces=loggers)
        gpus = len(tf.config.list_physical_devices("GPU"))
        if gpus > 1:  # FE trains on all of them (MirroredStrategy), splitting each batch
            print(f"pipeline-vae: {gpus} GPUs: global batch {config.batch_size}, about {config.batch_size / gpus:g} "
                  "per GPU")
        start = time.perf_counter()
        try:
            summary = estimator.fit(summary="pipeline-vae", warmup=False)  # graph_for checked the graph
        except BaseException as err:
            from pipeline_vae.tracking.base import ended_from_outside
            for logger in loggers:
                logger.close(failed=True, killed=ended_from_outside(err))
            raise
        train_seconds = time.perf_counter() - start
    history = summary.history["eval"].get(METRIC, {})
    best_step = max(history, key=lambda step: float(history[step])) if history else None
    nan_stop = next((t.stopped_at for t in estimator.traces if isinstance(t, StopOnNaN) and t.stopped_at), None)
    for logger in loggers:
        if history:
            logger.log_summary({"best_elbo": float(history[best_step]), "last_elbo": float(history[max(history)]),
                                "train_seconds": train_seconds})
        logger.close(failed=bool(nan_stop or not history))
    if nan_stop:
        epoch, step, key = nan_stop
        kept = (f"the best model so far is kept ({os.path.join(args.save_dir, 'encoder_best_loss.h5')}, decoder "
                f"beside it; {config.selection} ELBO {float(history[best_step]):.2f} at step {best_step})"
                if history else
                "no model was saved (no epoch finished)")
        checkpoint = last_checkpoint_epoch(checkpoints) if resume else 0
        where = f"; last good checkpoint: after epoch {checkpoint}" if checkpoint else ""
        print(f"pipeline-vae: error: training stopped: '{key}' became NaN/Inf at epoch {epoch}, step {step} (a "
              f"diverging learning rate? try a lower --lr with --fresh); {kept}{where}", file=sys.stderr)
        return EXIT_FAILURE
    if not history:
        print("pipeline-vae: training ended before any evaluation; no model was saved", file=sys.stderr)
        return EXIT_FAILURE
    last_step = max(history)
    split = config.selection
    scope = f"{split} set" if config.eval_steps_per_epoch is None else (f"first {config.eval_steps_per_epoch} "
                                                                        f"{split} batches")
    print(f"Final {split} ELBO: {float(history[last_step]):.2f} nats ({scope}, step {last_step}); "
          f"best: {float(history[best_step]):.2f} nats (step {best_step})")
    names = (FILES["encoder"], FILES["decoder"], FILES["prior"], FILES["flow"], CONFIG_FILE, FILES["log"], FILES["gif"])
    files = [os.path.join(args.save_dir, name) for name in names]
    print("Saved: " + ", ".join(f for f in files if os.path.exists(f)))
    return 0


def _data_source(args: argparse.Namespace) -> Any:
    """The train command's data flags as a DataSource (checked here, before TensorFlow is imported)."""
    from pipeline_vae.data import DataSource
    source = DataSource(data=args.data or "mnist", image_size=None if args.image_size is None else
                        tuple(args.image_size), channels=args.channels, test_fraction=args.test_fraction,
                        split_seed=args.split_seed, validation_fraction=args.validation_fraction)
    source.check()
    return source


def _run_images(args: argparse.Namespace, vae: Any) -> Any:
    """The test images (and labels) of the run's own data source, or of `--data` read with the run's settings."""
    from dataclasses import replace
    from pipeline_vae.data import load_data
    source = vae.config.data if args.data is None else replace(vae.config.data, data=args.data)
    data = load_data(source)
    if tuple(data.image_shape) != tuple(vae.image_shape):
        raise ValueError(f"data: {data.description} has images {data.image_shape}, but the run in {args.save_dir} was "
                         f"trained on {tuple(vae.image_shape)}")
    return data


def _check_run_folder(save_dir: str) -> None:
    """Refuse a missing run folder, an unusable configuration or missing model files before TensorFlow is imported
    (so these answer at once)."""
    from pipeline_vae.run_config import RunConfig
    config = RunConfig.read(save_dir)
    for role in ("encoder", "decoder"):
        path = config.path(save_dir, role)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{role} model {path} does not exist (train with `pipeline-vae train --save-dir "
                                    "DIR`)")


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-run-code", action="store_true",
                        help="load the models' own architectures from the .h5 files, which runs any code they hold "
                        "(Lambda layers, custom layers); by default they are rebuilt from cvae_config.json and only "
                        "their weights are read. Only for a folder whose author you trust (docs/threat-model.md)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    _check_run_folder(args.save_dir)
    _quiet_tensorflow()
    from pipeline_vae.atomic import write_json_atomic
    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import evaluate, format_table
    from pipeline_vae.resolve import tiny_budget
    vae = CVAE.load(args.save_dir, trust_code=args.trust_run_code)
    asked = {"iw_samples": args.iw_samples, "n_images": args.n_images}
    budget = tiny_budget({name: getattr(vae.config, name) if value is None else value for name, value in asked.items()})
    data = _run_images(args, vae)
    images = data.test_images(budget["n_images"])
    partial = iw_progress_file(args.save_dir, budget["iw_samples"], args.seed)
    from tqdm import tqdm
    metrics = evaluate(vae, images, iw_samples=budget["iw_samples"], seed=args.seed, resume_file=partial,
                       say=lambda line: tqdm.write(f"pipeline-vae: {line}", file=sys.stderr))
    metrics["data"] = data.description
    print(format_table(metrics))
    path = vae.config.path(args.save_dir, "metrics")
    write_json_atomic(path, metrics)
    print(f"Saved: {path}")
    _follow_up(args, "evaluate", metrics, [path])
    return 0


def _follow_up(args: argparse.Namespace, command: str, metrics: Optional[dict], files: List[str]) -> None:
    """Add a command's numbers and files to the run's tracked runs (`tracking.json`), unless --no-track; a tracked
    run that cannot be reached is one line on stderr, not a failure (the files are written already)."""
    if args.no_track:
        return
    from pipeline_vae.tracking import follow_up
    try:
        for line in follow_up(args.save_dir, command, metrics, files):
            print(line)
    except Exception as err:  # the tool's own errors: the command's work is done and saved
        if getattr(args, "debug", False):
            raise
        print(f"pipeline-vae: warning: not added to the tracked run: {_one_line(err)}", file=sys.stderr)


def cmd_plot(args: argparse.Namespace) -> int:
    _check_run_folder(args.save_dir)
    _quiet_tensorflow()
    from pipeline_vae.inference import CVAE
    from pipeline_vae.plots import plot_run
    data = _run_images(args, CVAE.load(args.save_dir, trust_code=args.trust_run_code))
    images, labels = data.test_images(args.n_images), data.test_labels(args.n_images)
    written = plot_run(args.save_dir, images, labels, log=sys.stderr, trust_code=args.trust_run_code, fmt=args.fmt,
                       dpi=args.dpi)
    for path in written:
        print(f"Saved: {path}")
    _follow_up(args, "plot", None, written)
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    _check_run_folder(args.save_dir)
    _quiet_tensorflow()
    from pipeline_vae.explore import explore_run
    from pipeline_vae.inference import CVAE
    data = _run_images(args, CVAE.load(args.save_dir, trust_code=args.trust_run_code))
    summary = explore_run(args.save_dir, data.test_images(args.n_images), seed=args.seed, units=args.units,
                          fmt=args.fmt, dpi=args.dpi, trust_code=args.trust_run_code, log=sys.stdout)
    for path in summary["written"]:
        print(f"Saved: {path}")
    _follow_up(args, "explore", {"active_units": summary["active_units"], "elbo_mean": summary["elbo_mean"],
                                 "kl_total": sum(summary["kl_per_unit"])}, summary["written"])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _check_run_folder(args.save_dir)
    _quiet_tensorflow()
    from pipeline_vae.export import export_run
    from pipeline_vae.inference import CVAE
    data = _run_images(args, CVAE.load(args.save_dir, trust_code=args.trust_run_code))
    formats = list(dict.fromkeys(args.formats or ["savedmodel"]))
    for done in export_run(args.save_dir, formats, data.test_images(args.n_images), out_dir=args.out,
                           trust_code=args.trust_run_code):
        worst = max(done["max_abs_diff"].values())
        print(f"Saved: {done['path']} ({done['format']}; checked on {args.n_images} test images: largest difference "
              f"from the .h5 pair {worst:.1g})")
    return 0


def _check_executor_flags(args: argparse.Namespace) -> None:
    """Ray-only flags need --executor ray."""
    if args.executor != "ray":
        given = [flag for flag, value in (("--address", args.address), ("--gpus-per-trial", args.gpus_per_trial),
                                          ("--dashboard", args.dashboard)) if value]
        if given:
            raise ValueError(f"{given[0]} needs --executor ray")


def cmd_ablate(args: argparse.Namespace) -> int:
    _check_executor_flags(args)
    uri = _tracking_uri(args)
    from pipeline_vae.ablation.spec import check_spec_file
    check_spec_file(args.spec)  # its structure, before TensorFlow is imported (the ops are checked below)
    if args.executor == "ray":
        from pipeline_vae.ablation.ray_executor import check_address  # (also: is the ray extra installed?)
        check_address(args.address)
    _quiet_tensorflow()
    from pipeline_vae.ablation.report import REPORT_KINDS, report_paths
    from pipeline_vae.ablation.runner import run_ablation
    from pipeline_vae.ablation.spec import load_spec
    spec = load_spec(args.spec, data=args.data)
    runs = len(spec.variants) * len(spec.seeds)
    if args.check:
        print(f"{args.spec}: OK: {len(spec.variants)} variants ({', '.join(v.name for v in spec.variants)}; baseline "
              f"{spec.baseline}) x {len(spec.seeds)} seeds = {runs} runs of {spec.budget['epochs']} epoch(s)")
        return 0
    out_dir = args.out or os.path.join("runs", "ablations", spec.name)
    run_ablation(spec, out_dir, data=args.data, executor=args.executor, command="pipeline-vae " + " ".join(args.argv),
                 max_concurrent=args.max_concurrent, max_failures=args.max_failures,
                 cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial or 0, address=args.address,
                 dashboard=args.dashboard, track=args.track or (), tracking_uri=uri, experiment=args.experiment)
    paths = report_paths(os.path.abspath(out_dir))
    with open(paths["md"]) as file:
        print(file.read())
    print("Saved: " + ", ".join(paths[kind] for kind in REPORT_KINDS))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    import json
    uri = _tracking_uri(args)
    if not os.path.isfile(args.spec):
        raise FileNotFoundError(f"spec file {args.spec} does not exist")
    from pipeline_vae.ablation.ray_executor import check_address  # (also: is the ray extra installed?)
    check_address(args.address)
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ValueError("tune: Optuna is not installed; pip install -e '.[tune]'") from None
    _quiet_tensorflow()
    from pipeline_vae.search.runner import run_search
    from pipeline_vae.search.spec import load_search
    search = load_search(args.spec, data=args.data)
    if args.check:
        print(f"{args.spec}: OK: {search.trials} trials of up to {search.budget['epochs']} epoch(s) over "
              f"{', '.join(d.name for d in search.dimensions)}; metric {search.metric}; "
              f"{'ASHA ' + json.dumps(search.scheduler) if search.scheduler else 'no early stopping'}")
        return 0
    out_dir = args.out or os.path.join("runs", "searches", search.name)
    run_search(search, out_dir, data=args.data, command="pipeline-vae " + " ".join(args.argv), address=args.address,
               cpus_per_trial=args.cpus_per_trial, max_concurrent=args.max_concurrent,
               max_failures=args.max_failures, track=args.track or (), tracking_uri=uri, experiment=args.experiment)
    results = os.path.join(os.path.abspath(out_dir), "results.md")
    with open(results) as file:
        print(file.read())
    best = os.path.join(os.path.abspath(out_dir), "best.yaml")
    print("Saved: " + results + (f", {best} (re-run it: pipeline-vae ablate {best})" if os.path.isfile(best) else
                                 " (no trial ran its whole budget: no best configuration)"))
    return 0


def _add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--track", action="append", choices=("mlflow", "wandb"), default=None,
                        help="follow the run in MLflow or Weights & Biases (repeat for both; W&B is offline unless "
                        "WANDB_MODE=online: `wandb sync` uploads later)")
    parser.add_argument("--tracking-uri", metavar="URI", default=None,
                        help="MLflow's store: sqlite:///PATH.db or a server http://HOST:PORT (default "
                        "sqlite:///mlruns.db in the working directory)")
    parser.add_argument("--experiment", default="pipeline-vae", metavar="NAME",
                        help="MLflow experiment / W&B project (default pipeline-vae)")


def _add_no_track_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-track", action="store_true",
                        help="do not add the results to the run's tracked MLflow / W&B runs (tracking.json)")


def _add_figure_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FIGURE_FORMATS, default="png", dest="fmt",
                        help="figure format: png (default), or pdf / svg vector files for papers")
    parser.add_argument("--dpi", type=_count(10), default=FIGURE_DPI,
                        help=f"pixels per inch of PNG figures (default {FIGURE_DPI}: the sizes the docs state)")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _one_line(err: BaseException) -> str:
    """The error's message on one line. Errors raised while TF traces a graph carry TF's "in user code:" frames
    before the op's own message ("ValueError: ..."); keep only that message (its last line)."""
    from pipeline_vae.atomic import DiskFullError, is_disk_full
    if is_disk_full(err) and not isinstance(err, DiskFullError):  # a write outside atomic_path (FE's CSV log, ...)
        where = getattr(err, "filename", None)
        return (f"no space left on the device{f' to write {where}' if where else ''}; the files written before are "
                "intact. Free some space and run the same command again")
    text = str(err).strip()
    if "in user code:" in text:
        text = re.sub(r"^\w+(Error|Exception): ", "", text.splitlines()[-1].strip())
    return " ".join(text.split()) or type(err).__name__


class OneLineParser(argparse.ArgumentParser):
    """argparse with errors on one line: `pipeline-vae: error: MESSAGE (see pipeline-vae COMMAND --help)`, exit 2.

    argparse prints the whole usage block before its error; the usage is for `--help`."""
    def error(self, message: str) -> "NoReturn":
        command = self.prog if self.prog.startswith("pipeline-vae") else "pipeline-vae"
        self.exit(EXIT_USAGE, f"pipeline-vae: error: {' '.join(message.split())} (see {command} --help)\n")


def _positive_int(text: str) -> int:
    """One value of a multi-value integer flag (--image-size H W)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
    parser = OneLineParser(prog="pipeline-vae", parents=[common],
                                     description="Train and use convolutional VAEs on FastEstimator (MNIST or your own "
                                     "images).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", parents=[common], help="fetch, verify and cache MNIST (offline-capable) or a Keras set")
    data.add_argument("--data", metavar="PATH|NAME", help="verify this MNIST .npz instead of the cache, or fetch one of "
                      "Keras' sets (fashion_mnist, cifar10; needs internet) into the cache")
    data.add_argument("--cache", metavar="PATH", help="cache file (default ~/.cache/pipeline_vae/mnist.npz)")
    data.set_defaults(func=cmd_data)

    train = sub.add_parser("train", parents=[common], help="train the CVAE, saving the best encoder/decoder .h5")

    def setting(flag: str, name: str, parse: Callable[[str], Any] = int, **kwargs: Any) -> None:
        """A flag for run setting `name`: its default, check and help come from `pipeline_vae.settings`."""
        default = settings.default(name)
        shown = f" (default {default})" if default is not None else ""
        train.add_argument(flag, dest=name, type=settings.cli_type(name, parse), default=default,
                           help=settings.SETTINGS[name].help + shown, **kwargs)

    setting("--epochs", "epochs")
    setting("--batch-size", "batch_size")
    setting("--latent-dim", "latent_dim")
    setting("--lr", "learning_rate", float)
    train.add_argument("--save-dir", default="runs/cvae", help="where the .h5 files go (default runs/cvae)")
    setting("--train-steps-per-epoch", "train_steps_per_epoch")
    setting("--eval-steps-per-epoch", "eval_steps_per_epoch")
    setting("--seed", "seed")
    train.add_argument("--data", metavar="DATA", default=None,
                       help="mnist (default: env PIPELINE_VAE_DATA, else the verified cache), fashion_mnist, cifar10 "
                       "(downloads), an .npz with x_train/x_test (or x), or a folder of images")
    train.add_argument("--image-size", dest="image_size", type=_positive_int, nargs=2, metavar=("H", "W"),
                       default=settings.default("image_size"), help=settings.SETTINGS["image_size"].help)
    setting("--channels", "channels")
    setting("--test-fraction", "test_fraction", float)
    setting("--split-seed", "split_seed")
    setting("--validation-fraction", "validation_fraction", float, metavar="F")
    setting("--protocol", "protocol", str, metavar="{" + ",".join(settings.PROTOCOL_NAMES) + "}")
    setting("--prior", "prior", str, metavar="{" + ",".join(settings.PRIOR_NAMES) + "}")
    setting("--prior-components", "prior_components", metavar="K")
    setting("--upper-latent-dim", "upper_latent_dim", metavar="L2")
    setting("--flow", "flow", str, metavar="{" + ",".join(settings.FLOW_NAMES) + "}")
    setting("--flow-steps", "flow_steps", metavar="K")
    setting("--likelihood", "likelihood", str, metavar="{" + ",".join(settings.LIKELIHOOD_NAMES) + "}")
    setting("--binarize-threshold", "binarize_threshold", float, metavar="T")
    setting("--early-stop", "early_stop", metavar="PATIENCE")
    setting("--lr-plateau", "lr_plateau", metavar="PATIENCE")
    setting("--lr-schedule", "lr_schedule", str, metavar="{" + ",".join(settings.LR_SCHEDULES) + "}")
    setting("--log-steps", "log_steps")
    setting("--loss", "loss", str, metavar="{" + ",".join(settings.LOSS_NAMES) + "}")
    setting("--kl-warmup", "kl_warmup", metavar="EPOCHS")
    setting("--model", "model", str, metavar="{" + ",".join(settings.MODEL_NAMES) + "}")
    setting("--widths", "widths", settings.int_list, metavar="W1,W2,...")
    train.add_argument("--fresh", action="store_true",
                       help="start over: remove the previous run's files from SAVE_DIR (after checking that no other "
                       "process uses it) instead of resuming")
    train.add_argument("--no-resume", action="store_true",
                       help="do not checkpoint every epoch (default: checkpoint to SAVE_DIR/checkpoint and resume from "
                       "it when the same command runs again; seeded runs never checkpoint)")
    train.add_argument("--tensorboard", action="store_true",
                       help="also write TensorBoard event files to SAVE_DIR/tensorboard")
    train.add_argument("--mixed-precision", action="store_true", help=settings.SETTINGS["mixed_precision"].help)
    train.add_argument("--jit", action="store_true", help=settings.SETTINGS["jit"].help + " (off by default)")
    _add_tracking_flags(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", parents=[common],
                              help="test-set ELBO, its terms, the importance-weighted bound and active units")
    evaluate.add_argument("--save-dir", required=True, help="a folder written by `pipeline-vae train`")
    evaluate.add_argument("--iw-samples", type=settings.cli_type("iw_samples"), default=None,
                          metavar="K", help=settings.SETTINGS["iw_samples"].help + " (default: the run's recorded "
                          f"iw_samples, {settings.default('iw_samples')} unless it recorded another); an estimate of "
                          "its time is printed after the first images. "
                          "Its progress is kept in SAVE_DIR every minute: the same command again continues an "
                          "interrupted evaluation")
    evaluate.add_argument("--n-images", type=settings.cli_type("n_images"), default=None,
                          help=settings.SETTINGS["n_images"].help + " (or the run's recorded n_images)")
    evaluate.add_argument("--seed", type=_count(0), default=0, help="seed of the sampling noise (default 0)")
    evaluate.add_argument("--data", metavar="DATA", default=None,
                          help="evaluate on these images instead of the run's own test split (read with the run's "
                          "size, channels and split)")
    _add_trust_flag(evaluate)
    _add_no_track_flag(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    plot = sub.add_parser("plot", parents=[common], help="manifold, latent scatter, reconstructions, curves, GIF")
    plot.add_argument("--save-dir", required=True, help="a folder written by `pipeline-vae train`")
    plot.add_argument("--n-images", type=_count(1), default=None,
                      help="use only the first N test images for the latent scatter (default: the whole test split)")
    plot.add_argument("--data", metavar="DATA", default=None,
                      help="use these images instead of the run's own test split (read with the run's settings)")
    _add_figure_flags(plot)
    _add_trust_flag(plot)
    _add_no_track_flag(plot)
    plot.set_defaults(func=cmd_plot)

    explore = sub.add_parser("explore", parents=[common],
                             help="interpolations, latent traversals, per-unit KL, best- and worst-modelled images")
    explore.add_argument("--save-dir", required=True, help="a folder written by `pipeline-vae train`")
    explore.add_argument("--n-images", type=_count(2), default=1000,
                         help="explore with the first N test images (default 1000)")
    explore.add_argument("--data", metavar="DATA", default=None,
                         help="use these images instead of the run's own test split (read with the run's settings)")
    explore.add_argument("--units", type=_count(1), default=10,
                         help="latent units to traverse, largest KL first (default 10)")
    explore.add_argument("--seed", type=_count(0), default=0,
                         help="chooses the images interpolated and traversed; seeds the per-image ELBO (default 0)")
    _add_figure_flags(explore)
    _add_trust_flag(explore)
    _add_no_track_flag(explore)
    explore.set_defaults(func=cmd_explore)

    export = sub.add_parser("export", parents=[common],
                            help="a SavedModel with serving signatures, a TFLite file, ONNX files or an MLflow model; "
                            "each checked")
    export.add_argument("--save-dir", required=True, help="a folder written by `pipeline-vae train`")
    export.add_argument("--format", action="append", choices=("savedmodel", "tflite", "onnx", "mlflow"),
                        dest="formats", help="what to write (repeat for several; default savedmodel): savedmodel "
                        "(encode, decode, sample, elbo signatures), tflite (encode, decode), onnx (encode.onnx, "
                        "decode.onnx), mlflow (a pyfunc model serving encode)")
    export.add_argument("--out", default=None, help="where to write (default SAVE_DIR/export)")
    export.add_argument("--n-images", type=_count(1), default=100,
                        help="test images each export is checked on against the .h5 pair (default 100)")
    export.add_argument("--data", metavar="DATA", default=None,
                        help="check on these images instead of the run's own test split")
    _add_trust_flag(export)
    export.set_defaults(func=cmd_export)

    ablate = sub.add_parser("ablate", parents=[common],
                            help="train and evaluate the variants of an ablation spec; table and plot of results")
    ablate.add_argument("spec", help="YAML or JSON spec (see apphub/ablations/)")
    ablate.add_argument("--out", default=None, help="results folder (default runs/ablations/<spec name>); rerunning "
                        "with the same folder skips finished runs")
    ablate.add_argument("--data", metavar="DATA", default=None,
                        help="the data every run trains and is evaluated on (default: the spec's `data`, else mnist)")
    ablate.add_argument("--check", action="store_true", help="only validate the spec and print the plan")
    ablate.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: each trial a process on this machine (default); ray: each trial a Ray Tune trial "
                        "on a local Ray instance or the cluster at --address")
    ablate.add_argument("--address", metavar="auto|HOST:PORT", default=None,
                        help="join this Ray cluster (auto: the one `ray start --head` made on this node; default: a "
                        "private local instance)")
    ablate.add_argument("--cpus-per-trial", type=_count(1), default=None, metavar="N",
                        help="CPUs (and threads) per trial (default: ray 1; local: every core)")
    ablate.add_argument("--gpus-per-trial", type=_non_negative_float, default=None, metavar="G",
                        help="GPUs per Ray trial (default 0; 1 runs one trial per GPU)")
    ablate.add_argument("--max-concurrent", type=_count(1), default=None, metavar="N",
                        help="trials at once (default: local 1; ray as many as the resources allow)")
    ablate.add_argument("--max-failures", type=_count(0), default=2, metavar="N",
                        help="restarts of a failed trial, which resumes from its last epoch (default 2)")
    ablate.add_argument("--dashboard", action="store_true", help="start Ray's dashboard with a local instance")
    _add_tracking_flags(ablate)
    ablate.set_defaults(func=cmd_ablate)

    search = sub.add_parser("tune", parents=[common],
                            help="search run settings and op arguments: Optuna's TPE sampler, ASHA stopping weak "
                            "trials, on Ray Tune")
    search.add_argument("spec", help="YAML or JSON search spec (see apphub/searches/)")
    search.add_argument("--out", default=None, help="results folder (default runs/searches/<spec name>); rerunning "
                        "with the same folder resumes")
    search.add_argument("--data", metavar="DATA", default=None,
                        help="the data every trial trains and is evaluated on (default: the spec's `data`, else mnist)")
    search.add_argument("--check", action="store_true", help="only validate the spec and print the plan")
    search.add_argument("--address", metavar="auto|HOST:PORT", default=None,
                        help="join this Ray cluster (default: a private local instance)")
    search.add_argument("--cpus-per-trial", type=_count(1), default=1, metavar="N",
                        help="CPUs (and threads) per trial (default 1)")
    search.add_argument("--max-concurrent", type=_count(1), default=None, metavar="N",
                        help="trials at once (default: as many as the resources allow)")
    search.add_argument("--max-failures", type=_count(0), default=2, metavar="N",
                        help="restarts of a failed trial, which resumes from its last epoch (default 2)")
    _add_tracking_flags(search)
    search.set_defaults(func=cmd_tune)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up noise; must be set before TF is imported
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    debug = getattr(args, "debug", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("pipeline-vae: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as err:
        if debug:
            traceback.print_exc()
        print(f"pipeline-vae: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, (ValueError, TypeError)) else EXIT_FAILURE
    except (RunFailed, RunLockedError) as err:
        if debug:
            traceback.print_exc()
        print(f"pipeline-vae: error: {err}", file=sys.stderr)
        return EXIT_FAILURE


def exit_now(code: int) -> None:
    """Exit with `code` once everything is written, without tearing down TensorFlow's and torch's C++ state.

    After a run, Python's own shutdown of a process holding TensorFlow, torch and FastEstimator takes 1.5-2 s here
    (module teardown and the libraries' static destructors; measured in benchmarks/breakdown.py), with nothing left to
    write. This runs the `atexit` handlers (logging, W&B, Ray, MLflow), flushes stdout and stderr, and ends the process
    with `os._exit`. A process without TensorFlow loaded, or with a non-daemon thread still running, exits the usual
    way (that thread may still be writing).

    Args:
        code: The exit status.
    """
    main_thread = threading.main_thread()
    if "tensorflow" not in sys.modules or any(t is not main_thread and t.is_alive() and not t.daemon
                                              for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what a normal exit runs first (registered handlers, last in first out)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


def run() -> None:
    """The `pipeline-vae` console script: `main()`, then `exit_now` with its code."""
    exit_now(main())


if __name__ == "__main__":
    run()
