"""Run an ablation: every variant x seed trained on the same budget and evaluated by the same code, on this machine or
on a Ray cluster, optionally tracked in MLflow or W&B.

    rows = run_ablation(load_spec("apphub/ablations/binarization.yaml"), "runs/ablations/binarization")
    rows = run_ablation(spec, out, executor="ray", cpus_per_trial=1, track=("mlflow",))

The records are the truth: each finished trial writes `OUT/runs/<variant>/seed_<seed>/result.json` atomically
(`pipeline_vae.ablation.trial`), the table is built from them, and a rerun of the same command runs only the trials
without one (interrupted trials resume from their last epoch). A trial is claimed by a lock while it trains, so two
`ablate` commands on the same OUT (or two drivers on a shared OUT) never train one trial twice: the second waits and
then reads the first's record. Trials run in processes of their own (`local_executor`) or as Ray Tune trials
(`ray_executor`); the same spec and seeds give the same numbers with either.
"""
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO

from pipeline_vae.ablation import RunFailed
from pipeline_vae.ablation.progress import Progress
from pipeline_vae.ablation.report import summarize, write_reports
from pipeline_vae.ablation.spec import Spec
from pipeline_vae.ablation.trial import (Trial, load_record, read_record,  # noqa: F401  (run_key: public API)
                                         run_key, trial_row, trials_of)
from pipeline_vae.atomic import write_json_atomic

SPEC_FILE = "spec.json"
#: What the table ranks by.
OPTIMIZE_FIELD = "iw_bound"
EXECUTORS = ("local", "ray")


def run_dir(out_dir: str, variant: str, seed: int) -> str:
    """Where one trial's files go."""
    return os.path.join(out_dir, "runs", variant, f"seed_{seed}")


def check_out(out_dir: str, spec: Spec) -> None:
    """Refuse an OUT folder that holds another spec's results (its `spec.json` names another spec).

    Raises:
        ValueError: Naming `--out`, the spec found there and this one.
    """
    path = os.path.join(out_dir, SPEC_FILE)
    if os.path.isfile(path):
        try:
            with open(path) as file:
                found = json.load(file).get("name")
        except (OSError, ValueError, AttributeError):
            raise ValueError(f"--out: {path} is not a spec this toolkit wrote; use another --out") from None
        if found != spec.name:
            raise ValueError(f"--out: {out_dir} holds the results of spec {found!r}, not {spec.name!r}; use another "
                             "--out")
    elif os.path.isdir(out_dir) and [name for name in os.listdir(out_dir) if not name.startswith(".")]:
        # (hidden names pass: another `ablate` starting on this OUT may be writing spec.json's temporary file)
        raise ValueError(f"--out: {out_dir} is not empty and holds no ablation; use an empty or new folder")


def _spec_params(spec: Spec) -> Dict[str, Any]:
    return {"spec": spec.name, "variants": ",".join(v.name for v in spec.variants), "baseline": spec.baseline,
            "seeds": json.dumps(spec.seeds), "budget": json.dumps(spec.budget), "eval": json.dumps(spec.eval),
            "data": json.dumps(spec.data)}


def _open_tracking(spec: Spec, out_dir: str, track: Sequence[str], tracking_uri: Optional[str],
                   experiment: str) -> tuple:
    """The ablation's parent runs (opened here, in the driver, before any trial) and the settings its trials log
    with: MLflow child runs under the parent; W&B runs grouped by the spec's name."""
    from pipeline_vae.tracking import MLflowLogger, WandbLogger
    from pipeline_vae.tracking.mlflow_logger import check_tracking_uri, open_experiment
    parents, settings = [], []
    for tool in dict.fromkeys(track):
        if tool == "mlflow":
            uri = check_tracking_uri(tracking_uri)
            open_experiment(uri, experiment)  # the store is created once, here: SQLite's schema set-up cannot race
            parent = MLflowLogger(save_dir=out_dir, tracking_uri=uri, experiment=experiment, run_name=spec.name,
                                  params=_spec_params(spec), finish=False)
            settings.append({"tool": "mlflow", "tracking_uri": uri, "experiment": experiment,
                             "parent_run_id": parent.start()})
        elif tool == "wandb":
            parent = WandbLogger(save_dir=out_dir, project=experiment, run_name=spec.name, group=spec.name,
                                 job_type="ablation", params=_spec_params(spec), finish=False)
            parent.start()
            settings.append({"tool": "wandb", "project": experiment, "group": spec.name, "job_type": "trial",
                             "mode": parent.wandb_mode})
        else:
            raise ValueError(f"--track: expected mlflow or wandb, got {tool!r}")
        parents.append(parent)
    return parents, settings


def run_ablation(spec: Spec, out_dir: str, data: Optional[str] = None, stream: Optional[TextIO] = None,
                 executor: str = "local", command: str = "", max_concurrent: Optional[int] = None,
                 max_failures: int = 2, cpus_per_trial: Optional[int] = None, gpus_per_trial: float = 0,
                 address: Optional[str] = None, dashboard: bool = False, track: Sequence[str] = (),
                 tracking_uri: Optional[str] = None, experiment: str = "pipeline-vae") -> List[Dict]:
    """Run every trial of `spec` without a record in `out_dir`, write the reports, and return one row per trial.

    Args:
        spec: The validated spec.
        out_dir: The ablation's folder (created if needed); rerunning with the same folder resumes.
        data: The data (name or path) for every run instead of the spec's `data` (None: the spec's, else MNIST).
        stream: Where progress lines go (default stdout).
        executor: "local" (processes on this machine) or "ray" (Ray Tune trials).
        command: The command line, recorded in the reports.
        max_concurrent: Trials at once (local default 1; Ray default: as many as the resources allow).
        max_failures: Restarts of a failed trial (it resumes from its last epoch checkpoint).
        cpus_per_trial: CPUs (threads) per trial (local default: TensorFlow's, every core; Ray default 1).
        gpus_per_trial: GPUs per Ray trial.
        address: The Ray cluster (None: a private local instance).
        dashboard: Start Ray's dashboard with a local instance.
        track: Tools to log to: "mlflow", "wandb" (a parent run for the ablation, a run per trial).
        tracking_uri: MLflow's store (default `sqlite:///mlruns.db` in the working directory).
        experiment: The MLflow experiment or W&B project.

    Returns:
        One dict per (variant, seed) in spec order: `variant`, `seed`, and the trial's record.

    Raises:
        RunFailed: If trials failed for good (each named with its error and log); finished ones keep their records.
        ValueError: For a bad `executor`, `out_dir` holding another spec, an unusable tracking store or cluster.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    stream = stream or sys.stdout
    out_dir = os.path.abspath(out_dir)
    check_out(out_dir, spec)
    os.makedirs(out_dir, exist_ok=True)
    spec_path = os.path.join(out_dir, SPEC_FILE)
    write_json_atomic(spec_path, spec.to_json())
    trials = trials_of(spec, data)
    loaded = {t: load_record(t.folder(out_dir), t.key) for t in trials}  # (record, why it does not count)
    pending = [t for t in trials if loaded[t][0] is None]
    where = executor if executor == "local" else f"ray ({address or 'local instance'})"
    progress = Progress(len(trials), len(trials) - len(pending), stream, spec.budget["epochs"])
    progress.say(f"ablation {spec.name}: {len(spec.variants)} variants x {len(spec.seeds)} seeds = {len(trials)} "
                 f"trials; {len(trials) - len(pending)} already done in {out_dir}; executor {where}")
    for trial in pending:
        trouble = loaded[trial][1]
        if trouble:
            progress.say(f"{trial.name}: {trouble}; running it again")
    parents, tracking = _open_tracking(spec, out_dir, track, tracking_uri, experiment) if track else ([], [])
    failed: Dict[Trial, str] = {}
    try:
        if pending and executor == "local":
            from pipeline_vae.ablation.local_executor import run_local
            failed = run_local(spec_path, pending, out_dir, progress, data=data, tracking=tracking,
                               max_concurrent=max_concurrent or 1, max_failures=max_failures,
                               cpus_per_trial=cpus_per_trial)
        elif pending:
            from pipeline_vae.ablation.ray_executor import run_ray
            failed = run_ray(spec, pending, out_dir, progress, data=data, tracking=tracking, address=address,
                             cpus_per_trial=cpus_per_trial or 1, gpus_per_trial=gpus_per_trial,
                             max_concurrent=max_concurrent, max_failures=max_failures, dashboard=dashboard)
    except BaseException:
        for parent in parents:
            parent.close(failed=True)
        raise
    finally:
        progress.close()
    records = {t: read_record(t.folder(out_dir), t.key) for t in trials}
    missing = [t for t in trials if records[t] is None]
    if missing:
        for parent in parents:
            parent.close(failed=True)
        details = "; ".join(f"{t.name}: {failed.get(t, 'no record (interrupted?)')}" for t in missing)
        raise RunFailed(f"{len(missing)} of {len(trials)} trials did not finish ({details}); the finished ones are "
                        f"kept: run the same command again to retry the rest")
    rows = [trial_row(t, records[t], out_dir) for t in trials]
    paths = write_reports(spec, rows, out_dir, command=command)
    for parent in parents:
        for entry in summarize(spec, rows):
            parent.log_summary({f"{entry['variant']}/{key}": entry[f"{key}_mean"]
                                for key in (OPTIMIZE_FIELD, "elbo_analytic", "kl", "active_units")})
        parent.log_files(list(paths.values()))
        parent.close()
    return rows
