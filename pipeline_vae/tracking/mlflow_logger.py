"""MLflow: a run per training run (a child run per ablation trial), in a local SQLite store by default."""
import os
import re
import sys
import time
from typing import Any, Dict, List, Mapping, Optional

from fastestimator.util.traceability_util import traceable

from pipeline_vae.tracking.base import RunTracker, require
from pipeline_vae.tracking.uri import DEFAULT_EXPERIMENT, check_tracking_uri

#: Longest parameter value MLflow stores.
MAX_PARAM = 6000
#: Where a tracked training run's best model goes among its artifacts: `runs:/<run id>/model`.
MODEL_PATH = "model"


def _client(uri: str) -> Any:
    require("mlflow")
    import logging
    from mlflow.tracking import MlflowClient
    for name in ("mlflow", "alembic"):  # their INFO lines (database set-up) are not the user's business
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
    return MlflowClient(tracking_uri=uri)


def open_experiment(uri: str, name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment `name` in the store at `uri`, created if missing (a SQLite store keeps its artifacts in
    `mlartifacts/` beside the database file, not in the working directory).

    Create the store and the experiment in one process before several processes log to it: MLflow's SQLite schema
    creation is not safe to race.

    Raises:
        ValueError: If the store cannot be opened or written (one line naming `tracking_uri`).
    """
    client = _client(uri)
    from mlflow.exceptions import MlflowException
    try:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if uri.startswith("sqlite:///"):
            location = "file://" + os.path.join(os.path.dirname(uri[len("sqlite:///"):]), "mlartifacts")
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another process created it meanwhile
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id
    except MlflowException as err:
        raise ValueError(f"tracking_uri: cannot use {uri}: {' '.join(str(err).split())[:300]}") from None
    except Exception as err:  # SQLAlchemy and OS errors of an unusable store
        raise ValueError(f"tracking_uri: cannot use {uri}: {type(err).__name__}: {err}") from None


def metric_name(key: str) -> str:
    """`key` with the characters MLflow refuses in metric names replaced by `_` (e.g. `epoch_time(sec)`)."""
    return re.sub(r"[^\w\-. :/]", "_", key).rstrip("_") or "_"


@traceable(blacklist=("run_id", "_started", "_last_step", "_last_batch"))
class MLflowLogger(RunTracker):
    """Follow a run in MLflow (see `RunTracker` for what is logged).

        est = get_estimator(save_dir="runs/cvae", traces=[MLflowLogger("runs/cvae")])
        est.fit()   # then: mlflow ui --backend-store-uri sqlite:///mlruns.db

    Args:
        save_dir: The run folder (its configuration, files and `tracking.json`); None logs metrics only.
        tracking_uri: Where runs go (default `sqlite:///mlruns.db` in the working directory; a server works alike).
        experiment: The MLflow experiment (created if missing).
        run_name: The run's name (default: the folder's name).
        run_id: Log into this existing run instead of creating one.
        parent_run_id: Make the new run a child of this one (an ablation's trials).
        params: More parameters to log.
        finish: End the run when training ends (False: the caller calls `log_summary` and `close`).

    Raises:
        ValueError: If `tracking_uri` is not usable (see `check_tracking_uri`).
    """
    tool = "mlflow"

    def __init__(self, save_dir: Optional[str] = None, tracking_uri: Optional[str] = None,
                 experiment: str = DEFAULT_EXPERIMENT, run_name: Optional[str] = None, run_id: Optional[str] = None,
                 parent_run_id: Optional[str] = None, params: Optional[Mapping[str, Any]] = None,
                 finish: bool = True) -> None:
        super().__init__(save_dir=save_dir, run_name=run_name, params=params, finish=finish)
        self.tracking_uri = check_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.given_run_id = run_id
        self.parent_run_id = parent_run_id
        self._client: Any = None

    def _open(self, remembered: Dict[str, Any]) -> str:
        self._client = _client(self.tracking_uri)
        run_id = self.given_run_id
        if run_id is None and remembered.get("tracking_uri") == self.tracking_uri and remembered.get("run_id"):
            try:  # a resumed run continues its tracked run
                run_id = self._client.get_run(remembered["run_id"]).info.run_id
            except Exception:
                run_id = None
        if run_id is None:
            tags = {"mlflow.parentRunId": self.parent_run_id} if self.parent_run_id else None
            experiment_id = open_experiment(self.tracking_uri, self.experiment)
            run_id = self._client.create_run(experiment_id, run_name=self.run_name, tags=tags).info.run_id
        else:
            self._client.update_run(run_id, status="RUNNING")
        return run_id

    def _ids(self) -> Dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id}

    def log_model(self) -> None:
        """Log the run's best models as an MLflow pyfunc model under `MODEL_PATH` (`mlflow models serve -m
        runs:/<run id>/model` serves it), made and checked against the `.h5` pair as `pipeline-vae export --format
        mlflow` makes it (on 8 images the model generates). A failure is a one-line warning: training stands."""
        import tempfile
        from pipeline_vae.export import FORMATS, export_run
        from pipeline_vae.inference import CVAE
        self.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                vae = CVAE.load(self.save_dir)
                export_run(self.save_dir, ["mlflow"], vae.generate(8, seed=0), out_dir=tmp, vae=vae)
                self._client.log_artifacts(self.run_id, os.path.join(tmp, FORMATS["mlflow"]), artifact_path=MODEL_PATH)
        except Exception as err:  # noqa: BLE001 (any failure of the export or the store leaves the run as it is)
            print(f"pipeline-vae: warning: the best model was not logged to MLflow as a model: {type(err).__name__}: "
                  f"{' '.join(str(err).split())[:300]}", file=sys.stderr)

    def _log_params(self, params: Dict[str, Any]) -> None:
        from mlflow.entities import Param
        have = self._client.get_run(self.run_id).data.params  # MLflow params are write-once: keep the first values
        new = [Param(key, str(value)[:MAX_PARAM]) for key, value in params.items() if key not in have]
        for start in range(0, len(new), 100):
            self._client.log_batch(self.run_id, params=new[start:start + 100])

    def _log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(metric_name(key), value, now, step)
                                                     for key, value in metrics.items()])

    def _log_files(self, paths: List[str], folder: Optional[str]) -> None:
        for path in paths:
            where = folder or ("models" if path.endswith(".h5") else
                               "samples" if path.endswith((".png", ".gif")) else None)
            self._client.log_artifact(self.run_id, path, artifact_path=where)

    def _log_tags(self, tags: Dict[str, str]) -> None:
        from mlflow.entities import RunTag
        self._client.log_batch(self.run_id, tags=[RunTag(key, value) for key, value in tags.items()])

    def _log_summary(self, metrics: Dict[str, float]) -> None:
        self._log_metrics(metrics, self._last_step)

    def _close(self, failed: bool, killed: bool = False) -> None:
        self._client.set_terminated(self.run_id, status="KILLED" if killed else "FAILED" if failed else "FINISHED")
