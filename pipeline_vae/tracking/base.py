"""The FE trace behind every tracker: what is logged when; the backends say how."""
import importlib
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional

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
    config = RunConfig.read(save_dir).to_json()
    data = config.pop("data")
    config.pop("files", None)
    config.update({f"data.{key}": value for key, value in data.items()})
    return {key: value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)
            for key, value in sorted(config.items())}


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


@traceable(blacklist=("run_id", "_started", "_last_step"))  # a resume (RestoreWizard) must not bring back old ids
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
        return self.run_id

    def on_batch_end(self, data: Data) -> None:
        log_steps, step = self.system.log_steps, self.system.global_step
        if self.system.mode == "train" and log_steps and (step % log_steps == 0 or step == 1):
            self._log(data.read_logs(), "train", step)

    def on_epoch_end(self, data: Data) -> None:
        self._log(data.read_logs(), self.system.mode, self.system.global_step)

    def on_end(self, data: Data) -> None:
        if self.save_dir:
            self.log_files(self.files())
        if self.finish:
            self.close()

    def log_files(self, paths: List[str]) -> None:
        """Attach files to the tracked run (`.h5` models under `models/`, pictures under `samples/` in MLflow)."""
        self.start()
        if paths:
            self._log_files(paths)

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

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        """Log final numbers (e.g. the evaluation: ELBO, IW bound, KL, active units, seconds) as `final/<key>`."""
        self.start()
        found = numbers(metrics)
        if found:
            self._log_summary({f"final/{key}": value for key, value in found.items()})

    def close(self, failed: bool = False) -> None:
        """End the tracked run (FINISHED, or FAILED)."""
        if self._started:
            self._close(failed)
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

    def _log_files(self, paths: List[str]) -> None:
        raise NotImplementedError

    def _log_summary(self, metrics: Dict[str, float]) -> None:
        raise NotImplementedError

    def _close(self, failed: bool) -> None:
        raise NotImplementedError
