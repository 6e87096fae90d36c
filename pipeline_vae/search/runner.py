"""Run a search: Optuna's TPE sampler proposes configurations, Ray Tune's ASHA stops the weak ones at epoch
boundaries, and each trial runs as an ablation trial does (`ablation.trial.run_trial`: claimed by a lock, resumable,
its record written atomically).

    rows = run_search(load_search("apphub/searches/lr_widths.yaml"), "runs/searches/lr_widths")

In `OUT/`:

    search.json                the validated spec
    trials/t<digest>.json      a trial's sampled values (written when it starts)
    trials/t<digest>.stopped.json   its per-epoch ELBOs, once ASHA stopped it
    runs/t<digest>/seed_<s>/   the trial's run (an ablation trial's folder): `result.json` once it ran its whole
                               budget and was evaluated
    results.md, .json, .csv    every trial, best first; results.png: the metric over trials, stopped ones marked
    best.json, best.yaml       the best configuration, and an ablation spec that re-runs it over 3 new seeds on the
                               whole budget: `pipeline-vae ablate OUT/best.yaml`

The records are the truth, as in ablations: a rerun of the same command reads them, tells Optuna the finished and
stopped trials (with their per-epoch values), proposes first the trials that were running when the driver died (they
resume from their last epoch) and then only as many new ones as `trials` still allows. A stopped trial stays stopped.
ASHA's rungs restart with the new driver (only this driver's trials are compared at a rung).
"""
import json
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

from pipeline_vae.ablation.progress import Progress
from pipeline_vae.ablation.trial import RECORD_FILE, RUN_LOG, Trial, load_record, read_record, run_key, thread_env
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.search.spec import SearchSpec

SEARCH_FILE = "search.json"
TRIALS_DIR = "trials"
STOPPED_SUFFIX = ".stopped.json"
#: The value Tune's scheduler and searcher read (per epoch: the ELBO; at the end: the spec's metric).
OBJECTIVE = "objective"


def trial_of(search: SearchSpec, params: Dict[str, Any], data: Optional[str] = None) -> Trial:
    """The ablation trial (variant `t<digest>`, the search's seed, its definition key) of sampled `params`."""
    spec = search.trial_spec(params)
    return Trial(spec.variants[0].name, search.seed, run_key(spec, spec.variants[0], data))


def read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as file:
            value = json.load(file)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def params_path(out_dir: str, trial: Trial) -> str:
    """Where a trial's sampled values are kept (outside its run folder, which `run_trial` may clear)."""
    return os.path.join(out_dir, TRIALS_DIR, trial.variant + ".json")


def stopped_path(out_dir: str, trial: Trial) -> str:
    """Where a stopped trial's per-epoch ELBOs are kept."""
    return os.path.join(out_dir, TRIALS_DIR, trial.variant + STOPPED_SUFFIX)


def known_trials(search: SearchSpec, out_dir: str, data: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every trial of this search started in `out_dir`: `params`, `trial`, `state` ("finished", "stopped" or
    "interrupted"), `record` or `stopped` (whichever there is), `folder`, `started` (time) and `trouble` (why its
    record file does not count, when it has one that does not: see `load_record`)."""
    found = []
    root = os.path.join(out_dir, TRIALS_DIR)
    names = sorted(n for n in os.listdir(root) if n.endswith(".json") and not n.endswith(STOPPED_SUFFIX)) \
        if os.path.isdir(root) else []
    for name in names:
        saved = read_json(os.path.join(root, name))
        if not saved or not isinstance(saved.get("params"), dict):
            continue
        params = saved["params"]
        if sorted(params) != sorted(d.name for d in search.dimensions):
            continue
        trial = trial_of(search, params, data)
        if trial.variant + ".json" != name:
            continue
        folder = trial.folder(out_dir)
        (record, trouble), stopped = load_record(folder, trial.key), read_json(stopped_path(out_dir, trial))
        if stopped is not None and stopped.get("key") != trial.key:
            stopped = None
        state = "finished" if record else "stopped" if stopped else "interrupted"
        found.append({"params": params, "trial": trial, "state": state, "record": record, "stopped": stopped,
                      "folder": folder, "started": os.path.getmtime(os.path.join(root, name)),
                      "trouble": trouble})
    return found


def objective_of(search: SearchSpec, record: Dict[str, Any]) -> float:
    """A finished trial's value of the spec's metric."""
    return float(record["best_logged_elbo"] if search.metric == "elbo" else record["iw_bound"])


def _trainable(config: Dict[str, Any]) -> None:
    """A Tune trial: the sampled values as an ablation trial, run by `run_trial` in this Ray worker."""
    from ray import tune
    os.environ.update(thread_env(config["cpus"]))  # before TensorFlow is imported in this worker
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    search = SearchSpec.from_json(config["search"])
    params = {d.name: _decode(d, config[d.name]) for d in search.dimensions}
    trial = trial_of(search, params, config["data"])
    folder = trial.folder(config["out"])
    os.makedirs(folder, exist_ok=True)
    log = open(os.path.join(folder, RUN_LOG), "a")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    stopped = read_json(stopped_path(config["out"], trial))
    if stopped is not None and stopped.get("key") == trial.key:  # proposed again: a stopped trial stays stopped
        tune.report({"epoch": search.budget["epochs"], OBJECTIVE: stopped.get("best_elbo"), "stopped_before": True})
        return
    if not os.path.isfile(params_path(config["out"], trial)):
        os.makedirs(os.path.join(config["out"], TRIALS_DIR), exist_ok=True)
        write_json_atomic(params_path(config["out"], trial), {"params": params, "trial": trial.to_json()})
    from pipeline_vae.ablation.trial import run_trial
    last = search.budget["epochs"]

    def each_epoch(epoch: int, elbo: float) -> None:  # (a def: FE's traceability cannot read this as a lambda)
        if epoch < last:  # the last epoch's number comes with the record, after the evaluation: ASHA stops a trial
            tune.report({"epoch": epoch, "elbo": elbo, OBJECTIVE: elbo})  # that reaches max_t at once

    record = run_trial(search.trial_spec(params), trial, config["out"], config["data"], config["tracking"],
                       on_epoch=each_epoch, say=lambda text: print(text, flush=True))
    tune.report({"epoch": search.budget["epochs"], OBJECTIVE: objective_of(search, record),
                 "record": json.dumps(record)})


def _encode(dimension: Any, value: Any) -> Any:
    """A value as Optuna holds it: a choice as its JSON text (Optuna's choices are numbers and strings only)."""
    return json.dumps(value) if dimension.kind == "choice" else value


def _decode(dimension: Any, value: Any) -> Any:
    return json.loads(value) if dimension.kind == "choice" else value


def _space(search: SearchSpec) -> Dict[str, Any]:
    """The search's dimensions as Optuna distributions (a choice by the JSON text of each value)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    space: Dict[str, Any] = {}
    for d in search.dimensions:
        if d.kind == "choice":
            space[d.name] = CategoricalDistribution([json.dumps(v) for v in d.values])
        elif d.kind == "int":
            space[d.name] = IntDistribution(int(d.values[0]), int(d.values[1]))
        else:
            space[d.name] = FloatDistribution(float(d.values[0]), float(d.values[1]), log=d.kind == "loguniform")
    return space


def _tune_callback(search: SearchSpec, out_dir: str, data: Optional[str], progress: Progress) -> Any:
    from ray import tune

    class _Records(tune.Callback):
        """Tune's events as the search's lines and records: a trial that ended without its record was stopped."""
        def __init__(self) -> None:
            self.history: Dict[str, List[float]] = {}  # the ELBOs this driver saw (a resumed trial's later epochs)
            self.epochs: Dict[str, int] = {}
            self.started: Dict[str, float] = {}

        def _ours(self, trial: Any) -> Trial:
            params = {d.name: _decode(d, trial.config[d.name]) for d in search.dimensions}
            return trial_of(search, params, data)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.started.setdefault(trial.trial_id, time.perf_counter())

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: Dict, **info: Any) -> None:
            ours = self._ours(trial)
            if "stopped_before" in result:
                progress.say(f"    {ours.variant} proposed again: it was stopped before, and stays stopped")
                return
            if "record" not in result:
                self.history.setdefault(trial.trial_id, []).append(float(result["elbo"]))
                self.epochs[trial.trial_id] = int(result["epoch"])
                progress.epoch(ours, int(result["epoch"]), float(result["elbo"]))
                return
            record = json.loads(result["record"])
            folder = ours.folder(out_dir)
            if read_record(folder, ours.key) is None:  # OUT is not shared with the node that ran it
                write_json_atomic(os.path.join(folder, RECORD_FILE), record)
            progress.finished(ours, record, time.perf_counter() - self.started.get(trial.trial_id,
                                                                                   time.perf_counter()))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            ours = self._ours(trial)
            folder = ours.folder(out_dir)
            last = trial.last_result or {}
            if "record" in last or "stopped_before" in last or read_record(folder, ours.key) is not None:
                return
            history, epochs = self.history.get(trial.trial_id, []), self.epochs.get(trial.trial_id, 0)
            write_json_atomic(stopped_path(out_dir, ours), {
                "key": ours.key, "epochs": epochs, "elbo_per_epoch": history,
                "best_elbo": max(history) if history else None})
            shutil.rmtree(os.path.join(folder, "checkpoint"), ignore_errors=True)  # it stays stopped
            _end_tracked_run(folder)
            progress.stopped(ours, epochs, max(history) if history else float("nan"))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            from pipeline_vae.ablation.ray_executor import _error
            progress.failed_attempt(self._ours(trial), _error(trial), retrying=False)

    return _Records()


def _end_tracked_run(folder: str) -> None:
    """Mark a stopped trial's MLflow run KILLED (a trial process Ray ends gracefully does so itself, see
    `tracking.base.ended_from_outside`; one killed outright leaves its run RUNNING)."""
    from pipeline_vae.tracking.base import read_ids
    ids = read_ids(folder).get("mlflow")
    if isinstance(ids, dict) and ids.get("run_id"):
        try:
            from pipeline_vae.tracking.mlflow_logger import _client
            _client(ids["tracking_uri"]).set_terminated(ids["run_id"], status="KILLED")
        except Exception as err:  # noqa: BLE001 (the search goes on; the run stays as it was)
            print(f"pipeline-vae: warning: could not end the tracked run of {folder}: {err}", file=sys.stderr)


class SearchProgress(Progress):
    """An ablation's progress lines, plus one for each trial ASHA stopped."""
    def stopped(self, trial: Trial, epochs: int, best: float) -> None:
        self.running.pop(trial.name, None)
        self.done += 1
        self.finished_here += 1
        self.bar.update(1)
        self.say(f"[{self.done}/{self.total}] {trial.variant} stopped by ASHA after {epochs} epoch(s): best ELBO "
                 f"{best:.2f}; ETA {self.eta()}")


def run_search(search: SearchSpec, out_dir: str, data: Optional[str] = None, stream: Optional[TextIO] = None,
               address: Optional[str] = None, cpus_per_trial: int = 1, max_concurrent: Optional[int] = None,
               max_failures: int = 2, track: Sequence[str] = (), tracking_uri: Optional[str] = None,
               experiment: str = "pipeline-vae", command: str = "") -> List[Dict[str, Any]]:
    """Run the search's trials that are not done yet (see the module docstring), write the reports, return the rows.

    Args:
        search: The validated search spec.
        out_dir: The search's folder (created if needed); rerunning with the same folder resumes.
        data: The data (name or path) instead of the spec's.
        stream: Where progress lines go (default stdout).
        address: The Ray cluster (None: a private local instance).
        cpus_per_trial: CPUs (and threads) per trial.
        max_concurrent: Trials at once (None: as many as the resources allow).
        max_failures: Restarts of a failed trial (it resumes from its last epoch).
        track: "mlflow", "wandb": a parent run for the search, a child run per trial.
        tracking_uri: MLflow's store.
        experiment: The MLflow experiment or W&B project.
        command: The command line, recorded in the reports.

    Returns:
        One row per trial of this search in `out_dir`, best first (see `search.report.rows_of`).

    Raises:
        ValueError: For `out_dir` holding another search, or an unusable cluster or tracking store.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from pipeline_vae.ablation.ray_executor import check_resources, connect, end_private_instance
    from pipeline_vae.ablation.runner import _open_tracking
    from pipeline_vae.search.report import write_search_reports
    stream = stream or sys.stdout
    out_dir = os.path.abspath(out_dir)
    _check_out(out_dir, search)
    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(os.path.join(out_dir, SEARCH_FILE), search.to_json())
    known = known_trials(search, out_dir, data)
    done = [k for k in known if k["state"] != "interrupted"]
    interrupted = [k for k in known if k["state"] == "interrupted"]
    to_run = max(0, search.trials - len(done))
    progress = SearchProgress(search.trials, min(len(done), search.trials), stream, search.budget["epochs"])
    progress.say(f"search {search.name}: {search.trials} trials of up to {search.budget['epochs']} epoch(s), metric "
                 f"{search.metric}; {len(done)} done and {len(interrupted)} interrupted in {out_dir}; "
                 f"{to_run} to run")
    for k in interrupted:  # a damaged record (or one for another definition) is never passed over silently
        if k["trouble"]:
            again = "running it again" if k in interrupted[:to_run] else "not run again: no trials left to run"
            progress.say(f"{k['trial'].variant}: {k['trouble']}; {again}")
    if to_run:
        spec_like = search.trial_spec({d.name: d.values[0] for d in search.dimensions})
        parents, tracking = _open_tracking(spec_like, out_dir, track, tracking_uri, experiment) if track else ([], [])
        started = connect(address)
        try:
            check_resources(cpus_per_trial, 0)
            searcher = OptunaSearch(  # (a later driver's sampler seeded on: the same seed would propose the same
                space=_space(search), metric=OBJECTIVE, mode="max", seed=search.seed + len(known),  # trials again)
                points_to_evaluate=[{d.name: _encode(d, k["params"][d.name]) for d in search.dimensions}
                                    for k in interrupted[:to_run]] or None)
            scheduler = FIFOScheduler() if search.scheduler is None else ASHAScheduler(
                time_attr="epoch", metric=OBJECTIVE, mode="max", max_t=search.budget["epochs"],
                grace_period=min(search.scheduler["grace_period"], search.budget["epochs"]),
                reduction_factor=search.scheduler["reduction_factor"])
            param_space = {"search": search.to_json(), "out": out_dir, "data": data, "tracking": list(tracking),
                           "cpus": cpus_per_trial}
            for k in done:  # what earlier drivers learned: finished trials with their value, stopped ones pruned
                encoded = {d.name: _encode(d, k["params"][d.name]) for d in search.dimensions}
                if k["state"] == "finished":
                    searcher.add_evaluated_point(encoded, objective_of(search, k["record"]))
                else:
                    history = k["stopped"].get("elbo_per_epoch") or []
                    searcher.add_evaluated_point(encoded, None, pruned=True, intermediate_values=history or None)
            trainable = tune.with_resources(_trainable, {"cpu": cpus_per_trial})
            tuner = tune.Tuner(
                trainable, param_space=param_space,
                tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=to_run,
                                            max_concurrent_trials=max_concurrent, reuse_actors=False,
                                            trial_dirname_creator=lambda trial: trial.trial_id),
                run_config=tune.RunConfig(name=f"{search.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                          storage_path=os.path.join(out_dir, "ray"),
                                          failure_config=tune.FailureConfig(max_failures=max_failures), verbose=0,
                                          callbacks=[_tune_callback(search, out_dir, data, progress)]))
            tuner.fit()
        except BaseException:
            for parent in parents:
                parent.close(failed=True)
            raise
        finally:
            progress.close()
            if started:
                import ray
                ray.shutdown()
                end_private_instance()
    else:
        parents = []
        progress.close()
    rows, paths = write_search_reports(search, known_trials(search, out_dir, data), out_dir, command=command)
    for parent in parents:
        if rows:
            parent.log_summary({"best_" + search.metric: rows[0]["objective"]})
        parent.log_files(list(paths.values()))
        parent.close()
    return rows


def _check_out(out_dir: str, search: SearchSpec) -> None:
    """Refuse an OUT folder that holds something else than this search (another search, an ablation, files).

    Raises:
        ValueError: Naming `--out` and what it holds.
    """
    path = os.path.join(out_dir, SEARCH_FILE)
    if os.path.isfile(path):
        found = (read_json(path) or {}).get("name")
        if found != search.name:
            raise ValueError(f"--out: {out_dir} holds the results of search {found!r}, not {search.name!r}; use "
                             "another --out")
    elif os.path.isdir(out_dir) and [n for n in os.listdir(out_dir) if not n.startswith(".")]:
        raise ValueError(f"--out: {out_dir} is not empty and holds no search; use an empty or new folder")
