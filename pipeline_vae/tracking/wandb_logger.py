"""Weights & Biases: offline by default (no account, no network; `wandb sync` uploads later)."""
import os
from typing import Any, Dict, List, Mapping, Optional

from fastestimator.util.traceability_util import traceable

from pipeline_vae.tracking.base import RunTracker, require

DEFAULT_PROJECT = "pipeline-vae"
#: W&B's own switches for a quiet, local run (each only when the user has not set it).
QUIET = {"WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true", "WANDB_CONSOLE": "off",
         "WANDB_X_DISABLE_STATS": "true"}
MODES = ("offline", "online", "disabled")


def _wandb() -> Any:
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    return require("wandb")


@traceable(blacklist=("run_id", "_started", "_last_step", "_last_batch"))
class WandbLogger(RunTracker):
    """Follow a run in Weights & Biases (see `RunTracker` for what is logged).

        est = get_estimator(save_dir="runs/cvae", traces=[WandbLogger("runs/cvae")])
        est.fit()   # then: wandb sync runs/cvae/wandb/offline-run-*

    Files go into a W&B artifact (type "model") of the run; the final numbers into its summary.

    Args:
        save_dir: The run folder (its configuration, files, `tracking.json`; W&B's own folder `wandb/` goes in it).
        project: The W&B project.
        run_name: The run's name (default: the folder's name).
        group: Group runs together (an ablation's trials).
        job_type: W&B's job type ("train", "trial", ...).
        mode: "offline" (the default, or the environment's WANDB_MODE), "online" or "disabled".
        directory: Where W&B writes (default `save_dir`, else the working directory).
        params: More parameters to log (W&B's config).
        finish: End the run when training ends (False: the caller calls `log_summary` and `close`).

    Raises:
        ValueError: If `mode` is unknown or `directory` cannot be written.
    """
    tool = "wandb"

    def __init__(self, save_dir: Optional[str] = None, project: str = DEFAULT_PROJECT, run_name: Optional[str] = None,
                 group: Optional[str] = None, job_type: str = "train", mode: Optional[str] = None,
                 directory: Optional[str] = None, params: Optional[Mapping[str, Any]] = None,
                 finish: bool = True) -> None:
        super().__init__(save_dir=save_dir, run_name=run_name, params=params, finish=finish)
        self.wandb_mode = mode or os.environ.get("WANDB_MODE") or "offline"
        if self.wandb_mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {self.wandb_mode!r}")
        self.directory = os.path.abspath(directory or save_dir or os.getcwd())
        probe = self.directory
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.access(probe, os.W_OK):
            raise ValueError(f"directory: {self.directory} cannot be written (W&B's run folder goes there)")
        self.project, self.group, self.job_type = project, group, job_type
        self._run: Any = None
        self._params: Dict[str, Any] = {}

    def _open(self, remembered: Dict[str, Any]) -> str:
        wandb = _wandb()
        os.makedirs(self.directory, exist_ok=True)
        self._run = wandb.init(project=self.project, name=self.run_name, group=self.group, job_type=self.job_type,
                               id=remembered.get("id"), resume="allow", dir=self.directory, mode=self.wandb_mode,
                               reinit="create_new")
        return self._run.id

    def _ids(self) -> Dict[str, Any]:
        return {"id": self.run_id, "project": self.project}

    def _log_params(self, params: Dict[str, Any]) -> None:
        self._run.config.update(params, allow_val_change=True)

    def _log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def _log_files(self, paths: List[str], folder: Optional[str]) -> None:
        wandb = _wandb()
        artifact = wandb.Artifact(f"run-{self.run_id}" + (f"-{folder}" if folder else ""),
                                  type="model" if folder is None else folder)
        for path in paths:
            artifact.add_file(path)
        self._run.log_artifact(artifact)
        pictures = {f"{folder or 'samples'}/{os.path.splitext(os.path.basename(p))[0]}": wandb.Image(p)
                    for p in paths if p.endswith(".png")}
        if pictures:  # W&B shows pictures from the history, not from artifacts
            self._run.log(pictures)

    def _log_summary(self, metrics: Dict[str, float]) -> None:
        self._run.summary.update(metrics)

    def _log_tags(self, tags: Dict[str, str]) -> None:
        self._run.config.update({"_tags": tags}, allow_val_change=True)
        if tags.get("mlflow.source.git.commit"):
            self._run.tags = tuple(self._run.tags or ()) + (f"commit:{tags['mlflow.source.git.commit'][:12]}", )

    def _close(self, failed: bool, killed: bool = False) -> None:
        folder = getattr(self._run, "dir", None)
        self._run.finish(exit_code=1 if failed else 0)
        if self.wandb_mode == "offline" and folder:
            print(f"W&B run {self.run_id} is offline; upload it with: wandb sync {os.path.dirname(folder)}")
