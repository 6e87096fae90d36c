"""Follow runs in the tools people already watch them in: MLflow and Weights & Biases, as FastEstimator traces.

    from pipeline_vae.tracking import MLflowLogger, WandbLogger
    est = get_estimator(save_dir="runs/cvae", traces=[MLflowLogger("runs/cvae", tracking_uri="sqlite:///mlruns.db")])

Each logs the run's configuration as parameters, every logged training step's values and every epoch's train and eval
values, the best `.h5` models, the sample grid, the GIF and the log as artifacts, and (`log_summary`) final metrics.
A resumed run continues the same tracked run (its id is kept in `save_dir/tracking.json`), and `follow_up` adds what
later commands (`evaluate`, `plot`, `explore`) make of the run to it.

MLflow and W&B are optional extras (`pip install "pipeline-vae[mlflow]"`, `"pipeline-vae[wandb]"`): they are imported
only when a logger starts, with a message naming the extra when one is missing. This package loads its loggers (and
so FastEstimator and TensorFlow) on first use, so the CLI checks `--track` flags before TensorFlow starts.
"""
from typing import Any, Dict

from pipeline_vae.tracking.uri import DEFAULT_EXPERIMENT, DEFAULT_URI, check_tracking_uri

#: `--track` values.
TRACKERS = ("mlflow", "wandb")
_LAZY = {"RunTracker": "base", "require": "base", "follow_up": "base", "trackers_of": "base", "MLflowLogger": "mlflow_logger", "WandbLogger": "wandb_logger"}

__all__ = ["RunTracker", "MLflowLogger", "WandbLogger", "logger_for", "follow_up", "trackers_of", "TRACKERS", "DEFAULT_EXPERIMENT",
           "DEFAULT_URI", "check_tracking_uri", "require"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"pipeline_vae.tracking.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'pipeline_vae.tracking' has no attribute {name!r}")


def logger_for(settings: Dict[str, Any], **kwargs: Any) -> Any:
    """The logger (`MLflowLogger` or `WandbLogger`) a plain settings dict describes (how the ablation driver hands
    tracking to its trials).

    Args:
        settings: `{"tool": "mlflow", "tracking_uri": ..., "experiment": ..., "parent_run_id": ...}` or
            `{"tool": "wandb", "project": ..., "group": ..., "job_type": ..., "mode": ...}`.
        **kwargs: More arguments for the logger (save_dir, run_name, params, finish).

    Raises:
        ValueError: If the tool is not one of `TRACKERS`.
    """
    options = {key: value for key, value in settings.items() if key != "tool"}
    if settings.get("tool") == "mlflow":
        from pipeline_vae.tracking.mlflow_logger import MLflowLogger
        return MLflowLogger(**options, **kwargs)
    if settings.get("tool") == "wandb":
        from pipeline_vae.tracking.wandb_logger import WandbLogger
        return WandbLogger(**options, **kwargs)
    raise ValueError(f"track: expected one of {', '.join(TRACKERS)}, got {settings.get('tool')!r}")
