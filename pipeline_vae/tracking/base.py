"""The FE trace behind every tracker: what is logged when; the backends say how."""
import importlib
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from fastestimator.trace.trace import Trace
from fastestimator.util.data import Data
from fastestimator.util.traceability_util import traceable

from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.run_config import CONFIG_FILE, FILES, RunConfig

#: The extra that installs each optional package.
EXTRAS = {"mlflow": "mlflow", "wandb": "wandb", "ray": "ray"}


def require(module: str) -> Any:
    """Import an optional dependency, or raise ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module.split(".")[0], module)
        raise ImportError(f"{module} is not installed; install the extra: pip install \"pipeline-vae[{extra}]\" "
                          f"({err})") from None


def numbers(values: Mapping[str, Any]) -> Dict[str, float]:
    """The finite scalar numbers among `values` (FE's logs also hold strings, arrays and NaN)."""
    out = {}
    for key, value in values.items():
        try:
            number = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[key] = number
    return out


def run_params(save_dir: Optional[str]) -> Dict[str, Any]:
    """The run's configuration (`cvae_config.json`) as flat parameters: nested values become JSON strings."""
    if save_dir is None or not os.path.isfile(os.path.join(save_dir, CONFIG_FILE)):
        return {}
    return config_params(RunConfig.read(save_dir))


def config_params(run_config: RunConfig) -> Dict[str, Any]:
    """A run configuration as flat parameters (`data.<key>` for the data's): nested values become JSON strings."""
    config = run_config.to_json()
    data = config.pop("data")
    config.pop("files", None)
    config.update({f"data.{key}": value for key, value in data.items()})
    return {key: value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)
            for key, value in sorted(config.items())}


def learning_rates(network: Any) -> Dict[str, float]:
    """`<model name>_lr`: the learning rate of each model of an FE `network` that has an optimizer with a plain rate
    (FE writes these values only with a schedule)."""
    rates = {}
    for model in network.models:
        optimizer = getattr(model, "current_optimizer", None)
        try:
            rates[f"{model.model_name}_lr"] = float(np.asarray(optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):  # no optimizer, or a schedule object
            pass
    return rates


def run_tags(later: Optional[str] = None) -> Dict[str, str]:
    """Where a tracked run comes from: the command line and the toolkit's git commit (`<sha>`, `+dirty` with local
    changes; absent when not run from a checkout). For a `later` command (`follow_up`) the keys name it
    (`pipeline_vae.command.evaluate`, `pipeline_vae.commit.evaluate`), so the training run's own tags stay."""
    import sys
    from pipeline_vae.ablation.trial import code_version
    suffix = f".{later}" if later else ""
    tags = {f"pipeline_vae.command{suffix}": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])[:500]}
    commit = code_version()
    if commit:
        tags[f"pipeline_vae.commit{suffix}"] = commit
        if not later:
            tags["mlflow.source.git.commit"] = commit.split("+")[0]
    return tags


def read_ids(save_dir: Optional[str]) -> Dict[str, Any]:
    """What `save_dir/tracking.json` remembers of the tracked runs ({} if nothing)."""
    if save_dir is None:
        return {}
    try:
        with open(os.path.join(save_dir, FILES["tracking"])) as file:
            found = json.load(file)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def remember_ids(save_dir: Optional[str], tool: str, ids: Dict[str, Any]) -> None:
    """Record a tool's run ids in `save_dir/tracking.json` (atomically), beside other tools' entries."""
    if save_dir is None:
        return
    found = read_ids(save_dir)
    found[tool] = ids
    write_json_atomic(os.path.join(save_dir, FILES["tracking"]), found)


@traceable(blacklist=("run_id", "_started", "_last_step", "_last_batch"))  # a resume must not bring back old ids
class RunTracker(Trace):
    """Log a run to a tracking tool: parameters at the start, values as FE logs them, files and status at the end.

    - Parameters: the run's configuration (`save_dir/cvae_config.json`) plus `params`.
    - Metrics: every value FE logs, named `train/<key>` and `eval/<key>`, at FE's global step: each logged training
      step (`log_steps`, as the CSV log and the console show them) and each epoch's end.
    - Artifacts (at the end, when `save_dir` is given): the best `.h5` models, the last sample grid, `samples.gif`,
      `train_log.csv` and `cvae_config.json`.

    Subclasses implement `_open`, `_log_params`, `_log_metrics`, `_log_files`, `_log_summary` and `_close`.

    Args:
        save_dir: The run folder whose configuration and files are logged (None: metrics only).
        run_name: The tracked run's name (default: the folder's name).
        params: More parameters to log.
        finish: End the tracked run when training ends; False leaves it open for `log_summary` and `close`.
    """
    tool = ""

    def __init__(self, save_dir: Optional[str] = None, run_name: Optional[str] = None,
                 params: Optional[Mapping[str, Any]] = None, finish: bool = True) -> None:
        super().__init__(inputs="*", mode=("train", "eval"))  # "*": sorted after the traces whose values it logs
        self.save_dir = save_dir
        self.run_name = run_name or (os.path.basename(os.path.normpath(save_dir)) if save_dir else None)
        self.params = dict(params or {})
        self.finish = finish
        self.run_id: Optional[str] = None
        self.later: Optional[str] = None  # the later command (`follow_up`) this tracker logs for, if any
        self._started = False
        self._last_step = 0

    def on_begin(self, data: Data) -> None:
        self.start()

    def start(self) -> str:
        """Open (or, for a resumed run, reopen) the tracked run and log the parameters; returns its id."""
        if not self._started:
            self.run_id = self._open(read_ids(self.save_dir).get(self.tool, {}))
            self._started = True
            remember_ids(self.save_dir, self.tool, self._ids())
            self._log_params({**run_params(self.save_dir), **self.params})
            self._log_tags(run_tags(self.later))
        return self.run_id

    def on_batch_end(self, data: Data) -> None:
        log_steps, step = self.system.log_steps, self.system.global_step
        if self.system.mode == "train" and log_steps and (step % log_steps == 0 or step == 1):
            self._log(data.read_logs(), "train", step)
        if self.system.mode == "train":
            self._last_batch = data  # a reference: read only at the epoch's end

    def on_epoch_end(self, data: Data) -> None:
        log_steps, step = self.system.log_steps, self.system.global_step
        last = getattr(self, "_last_batch", None)
        if self.system.mode == "train" and log_steps and last is not None and step % log_steps != 0 and step != 1:
            # the epoch's last step, as the CSV log keeps it (`traces.AtomicCSVLogger`): the curve reaches the end
            self._log({key: last[key] for key in self.system.network.get_loss_keys() if key in last}, "train", step)
        self._last_batch = None
        values = dict(data.read_logs())
        if self.system.mode == "train":  # each model's learning rate, every epoch (FE logs it only with a schedule)
            values.update(learning_rates(self.system.network))
        self._log(values, self.system.mode, step)

    def on_end(self, data: Data) -> None:
        if self.save_dir:
            self.log_files(self.files())
            self.log_model()
        if self.finish:
            self.close()

    def log_files(self, paths: List[str], folder: Optional[str] = None) -> None:
        """Attach files to the tracked run (in MLflow under `folder`, else `.h5` models under `models/` and pictures
        under `samples/`)."""
        self.start()
        if paths:
            self._log_files(paths, folder)

    def _log(self, values: Mapping[str, Any], mode: str, step: int) -> None:
        found = numbers(values)
        if found:
            self._last_step = max(self._last_step, int(step))
            self._log_metrics({f"{mode}/{key}": value for key, value in found.items()}, int(step))

    def files(self) -> List[str]:
        """The run's files worth keeping with the tracked run (those that exist)."""
        config = RunConfig.read(self.save_dir)
        names = [config.files.get(role, FILES[role]) for role in ("encoder", "decoder", "gif", "log")]
        paths = [os.path.join(self.save_dir, name) for name in names + [CONFIG_FILE]]
        samples = os.path.join(self.save_dir, config.files.get("samples", FILES["samples"]))
        if os.path.isdir(samples):
            grids = sorted(name for name in os.listdir(samples) if name.endswith(".png"))
            paths += [os.path.join(samples, grids[-1])] if grids else []
        return [path for path in paths if os.path.isfile(path)]

    def log_model(self) -> None:
        """Log the run's best models as the tool's model format, where it has one (the backends decide: MLflow)."""

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        """Log final numbers (e.g. the evaluation: ELBO, IW bound, KL, active units, seconds) as `final/<key>`."""
        self.start()
        found = numbers(metrics)
        if found:
            self._log_summary({f"final/{key}": value for key, value in found.items()})

    def log_numbers(self, metrics: Mapping[str, Any], prefix: str) -> None:
        """Log a later command's numbers as `<prefix>/<key>` (MLflow: at the run's last step; W&B: its summary)."""
        self.start()
        found = numbers(metrics)
        if found:
            self._log_summary({f"{prefix}/{key}": value for key, value in found.items()})

    def close(self, failed: bool = False, killed: bool = False) -> None:
        """End the tracked run: FINISHED, FAILED, or KILLED (`killed`: interrupted or stopped from outside, e.g. by
        Ctrl-C, a SIGTERM or a scheduler stopping a trial: see `ended_from_outside`)."""
        if self._started:
            self._close(failed or killed, killed)
            self._started = False

    # The backend.
    def _open(self, remembered: Dict[str, Any]) -> str:
        raise NotImplementedError

    def _ids(self) -> Dict[str, Any]:
        raise NotImplementedError

    def _log_params(self, params: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        raise NotImplementedError

    def _log_files(self, paths: List[str], folder: Optional[str]) -> None:
        raise NotImplementedError

    def _log_summary(self, metrics: Dict[str, float]) -> None:
        raise NotImplementedError

    def _log_tags(self, tags: Dict[str, str]) -> None:
        raise NotImplementedError

    def _close(self, failed: bool, killed: bool = False) -> None:
        raise NotImplementedError


def ended_from_outside(err: BaseException) -> bool:
    """Whether `err` ends a run from outside (Ctrl-C, SIGTERM's SystemExit), not an error of the run itself."""
    return isinstance(err, (KeyboardInterrupt, SystemExit))


def trackers_of(save_dir: str) -> List[RunTracker]:
    """Loggers that reopen the tracked runs `save_dir/tracking.json` names (the training run's own), left open."""
    ids, found = read_ids(save_dir), []
    if isinstance(ids.get("mlflow"), dict) and ids["mlflow"].get("run_id"):
        from pipeline_vae.tracking.mlflow_logger import MLflowLogger
        found.append(MLflowLogger(save_dir, tracking_uri=ids["mlflow"].get("tracking_uri"),
                                  run_id=ids["mlflow"]["run_id"], finish=False))
    if isinstance(ids.get("wandb"), dict) and ids["wandb"].get("id"):
        from pipeline_vae.tracking.wandb_logger import DEFAULT_PROJECT, WandbLogger
        found.append(WandbLogger(save_dir, project=ids["wandb"].get("project") or DEFAULT_PROJECT, finish=False))
    return found


def follow_up(save_dir: str, command: str, metrics: Optional[Mapping[str, Any]] = None,
              files: Sequence[str] = ()) -> List[str]:
    """Add what a later command made of a run (`evaluate`'s numbers, `plot`'s and `explore`'s pictures) to the run's
    tracked runs: numbers as `<command>/<key>` at the last training step the run logged, files under `<command>/`.

    Returns:
        One line per tracked run, saying where the numbers went (none if the run was not tracked).

    Raises:
        ImportError, ValueError, OSError, or the tool's own errors: if a tracked run cannot be reached.
    """
    from pipeline_vae.train_log import read_log
    step = 0
    log_path = os.path.join(save_dir, FILES["log"])
    if os.path.isfile(log_path):
        rows = read_log(log_path)
        step = max([s for s, _, _ in rows["loss"] + rows["elbo"]], default=0)
    said = []
    for tracker in trackers_of(save_dir):
        tracker.later = command
        tracker.start()
        tracker._last_step = step
        try:
            if metrics:
                tracker.log_numbers(metrics, command)
            if files:
                tracker.log_files(list(files), folder=command)
        finally:
            tracker.close()
        said.append(f"Logged to {tracker.tool} run {tracker.run_id} ({command}" +
                    (f", {len(files)} file(s)" if files else "") + ")")
    board = tensorboard_follow_up(save_dir, command, metrics or {}, files, step)
    if board:
        said.append(f"Logged to TensorBoard {board} ({command}" + (f", {len(files)} file(s)" if files else "") + ")")
    return said


def tensorboard_follow_up(save_dir: str, command: str, metrics: Mapping[str, Any], files: Sequence[str],
                          step: int) -> Optional[str]:
    """For a run trained with `--tensorboard`: write a later command's numbers (scalars `<command>/<key>`) and PNG
    pictures (images `<command>/<name>`) at `step` into `tensorboard/<the newest training's folder>/<command>`, beside
    its `train` and `eval`. Returns that folder, or None for a run without TensorBoard files."""
    root = os.path.join(save_dir, "tensorboard")
    starts = sorted(name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name))) \
        if os.path.isdir(root) else []
    if not starts:
        return None
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter
    folder = os.path.join(root, starts[-1], command)
    writer = SummaryWriter(log_dir=folder)
    try:
        for key, value in numbers(metrics).items():
            writer.add_scalar(f"{command}/{key}", value, global_step=step)
        for path in files:
            if path.endswith(".png"):
                with Image.open(path) as picture:
                    pixels = np.asarray(picture.convert("RGB"))
                name = os.path.splitext(os.path.basename(path))[0]
                writer.add_image(f"{command}/{name}", pixels, global_step=step, dataformats="HWC")
    finally:
        writer.close()
    return folder
