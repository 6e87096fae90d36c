"""The Ray executor: each trial one Ray Tune trial, on a local Ray instance or a cluster.

    pipeline-vae ablate SPEC --executor ray                        # a private local Ray instance
    pipeline-vae ablate SPEC --executor ray --address auto         # the cluster `ray start --head` made on this node
    pipeline-vae ablate SPEC --executor ray --address HOST:6379    # a cluster's head node

Each (variant, seed) is a Tune trial named `<variant>_seed<seed>` (Tune's own trial ids stay random) with its own
resources (`cpus_per_trial` threads, `gpus_per_trial` GPUs) that runs `trial.run_trial` in its Ray worker process, so
its run folder is OUT/runs/<variant>/seed_<seed> as with the local executor (OUT should be a path every node sees; when
it is not, the records still come back to the driver through Ray and are written there, but the models stay on the
node that trained them). Tune's own files go to OUT/ray/<spec>-<time>/. A trial whose worker dies is retried
(`FailureConfig(max_failures)`) and resumes from its last epoch checkpoint in its run folder.
"""
import json
import os
import secrets
import socket
import time
from typing import Any, Dict, Optional, Sequence

from pipeline_vae.ablation.progress import Progress
from pipeline_vae.ablation.trial import RECORD_FILE, RUN_LOG, Trial, last_error, read_record, thread_env
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.tracking.base import require

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's older console output honours verbose=0 (no banner)
require("ray.tune")
import ray  # noqa: E402  (after the check that names the extra)
from ray import tune  # noqa: E402

#: Without these, joining an address where no cluster runs retries for about 14 minutes; with them, about 8 s.
GCS_TIMEOUTS = {"RAY_NUM_REDIS_GET_RETRIES": "1", "RAY_py_gcs_connect_timeout_s": "3",
                "RAY_gcs_rpc_server_connect_timeout_s": "2"}
#: The object store of a local instance: trials pass only small results through it.
LOCAL_OBJECT_STORE = 256 * 1024**2


def check_address(address: Optional[str], timeout: float = 3.0) -> None:
    """Refuse an address where nothing listens, in `timeout` seconds, before Ray tries (it would retry for minutes).

    Args:
        address: None (a local instance), "auto" (the cluster started on this node), "HOST:PORT" or "ray://HOST:PORT".

    Raises:
        ValueError: One line naming `--address` and what was expected or found.
    """
    if address in (None, "auto", "local"):
        return
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address: expected auto or HOST:PORT (a Ray head node, e.g. 10.0.0.5:6379), got "
                         f"{address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ValueError(f"--address: no Ray cluster answers at {target} ({err.strerror or err}); start one with "
                         f"`ray start --head --port {port}` on that node") from None


#: The token `private_instance_env` set (removed from the environment again when its instance shuts down).
PRIVATE_TOKEN: Dict[str, str] = {}


def private_instance_env() -> None:
    """Make the local instance about to start refuse everyone but this process and its workers.

    Ray 2.60 rewrites a node address of 127.0.0.1 to the machine's network address, and its GCS, raylet and worker
    servers listen on all interfaces whatever `_node_ip_address` says (checked with `psutil.net_connections`; Ray has
    no flag that binds them to loopback). So the instance uses Ray's token authentication instead: a fresh random
    token (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`) in this process's environment, which the workers inherit; a
    process without it that tries to join, from this machine or another, is refused. A user who set their own
    `RAY_AUTH_MODE` keeps it.
    """
    if "RAY_AUTH_MODE" not in os.environ:
        PRIVATE_TOKEN["token"] = secrets.token_hex(32)
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=PRIVATE_TOKEN["token"])
        _reload_auth()


def _reload_auth() -> None:
    """Make this process's Ray read `RAY_AUTH_*` again (it reads them when `ray` is imported): Ray's own reset, as
    its `authentication_test_utils.reset_auth_token_state` does it."""
    from ray._raylet import AuthenticationTokenLoader, Config
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def end_private_instance() -> None:
    """After `ray.shutdown()`: take the token `private_instance_env` set out of the environment again."""
    if PRIVATE_TOKEN and os.environ.get("RAY_AUTH_TOKEN") == PRIVATE_TOKEN.get("token"):
        for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
            os.environ.pop(key, None)
        PRIVATE_TOKEN.clear()
        _reload_auth()


def connect(address: Optional[str], dashboard: bool = False) -> bool:
    """Join the cluster at `address`, or start a private local instance (None). Returns whether one was started here.

    Raises:
        ValueError: If no cluster answers at `address` (within seconds).
    """
    if ray.is_initialized():
        return False
    check_address(address)
    for key, value in GCS_TIMEOUTS.items():
        os.environ.setdefault(key, value)
    try:
        if address is None:  # "local": never join a stray cluster another `ray start` left on this node
            private_instance_env()
            ray.init(address="local", include_dashboard=dashboard, log_to_driver=False,
                     object_store_memory=LOCAL_OBJECT_STORE, logging_level="ERROR")
            return True
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        return False
    except ConnectionError as err:
        raise ValueError(f"--address: cannot join a Ray cluster at {address}: {' '.join(str(err).split())[:300]}"
                         ) from None


def check_resources(cpus: int, gpus: float) -> None:
    """Refuse per-trial resources that no live node has (Tune would wait for them forever).

    Raises:
        ValueError: Naming `--cpus-per-trial` or `--gpus-per-trial`, what was asked and the largest node.
    """
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if cpus > most_cpus:
        raise ValueError(f"--cpus-per-trial: {cpus} CPUs per trial, but the largest of the cluster's {len(nodes)} "
                         f"node(s) has {most_cpus:g}")
    if gpus > most_gpus:
        raise ValueError(f"--gpus-per-trial: {gpus:g} GPUs per trial, but the largest of the cluster's {len(nodes)} "
                         f"node(s) has {most_gpus:g}")


def _trial_name(trial: Any) -> str:
    return Trial(**trial.config["trial"]).slug


def _trainable(config: Dict[str, Any]) -> None:
    """A Tune trial: `run_trial` in this Ray worker, its console output in the run folder's run.log."""
    os.environ.update(thread_env(config["cpus"]))  # before TensorFlow is imported in this worker
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    trial = Trial(**config["trial"])
    folder = trial.folder(config["out"])
    os.makedirs(folder, exist_ok=True)
    log = open(os.path.join(folder, RUN_LOG), "a")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    from pipeline_vae.ablation.spec import Spec
    from pipeline_vae.ablation.trial import run_trial
    spec = Spec.from_json(config["spec"])
    record = run_trial(spec, trial, config["out"], config["data"], config["tracking"],
                       on_epoch=lambda epoch, elbo: tune.report({"epoch": epoch, "elbo": elbo}),
                       say=lambda text: print(text, flush=True))
    tune.report({"epoch": spec.budget["epochs"], "record": json.dumps(record)})


class _Report(tune.Callback):
    """Tune's events as the ablation's lines; records that came back through Ray are written to OUT if missing."""
    def __init__(self, progress: Progress, out_dir: str) -> None:
        self.progress, self.out_dir = progress, out_dir
        self.started: Dict[str, float] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started.setdefault(_trial_name(trial), time.perf_counter())

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: Dict, **info: Any) -> None:
        ours = Trial(**trial.config["trial"])
        if "record" not in result:
            self.progress.epoch(ours, int(result["epoch"]), float(result["elbo"]))
            return
        record = json.loads(result["record"])
        folder = ours.folder(self.out_dir)
        if read_record(folder, ours.key) is None:  # OUT is not shared with the node that ran it
            write_json_atomic(os.path.join(folder, RECORD_FILE), record)
        self.progress.finished(ours, record, time.perf_counter() - self.started.get(ours.slug, time.perf_counter()))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.failed_attempt(Trial(**trial.config["trial"]), _error(trial), retrying=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.failed_attempt(Trial(**trial.config["trial"]), _error(trial), retrying=False)


def _error(trial: Any) -> str:
    """The last error line Tune recorded for `trial`."""
    return last_error(getattr(trial, "error_file", None), missing="the trial failed (no error recorded)")


def run_ray(spec: Any, trials: Sequence[Trial], out_dir: str, progress: Progress, data: Optional[str] = None,
            tracking: Sequence[Dict[str, Any]] = (), address: Optional[str] = None, cpus_per_trial: int = 1,
            gpus_per_trial: float = 0, max_concurrent: Optional[int] = None, max_failures: int = 2,
            dashboard: bool = False) -> Dict[Trial, str]:
    """Run `trials` as Ray Tune trials.

    Args:
        spec: The spec.
        trials: The trials to run.
        out_dir: The ablation's folder (absolute).
        progress: Where lines go.
        data: The data instead of the spec's.
        tracking: Tracker settings for the trials.
        address: The cluster (None: a private local instance).
        cpus_per_trial: CPUs (and threads) per trial.
        gpus_per_trial: GPUs per trial (fractions share one).
        max_concurrent: Trials at once (None: as many as the resources allow).
        max_failures: Retries per trial.
        dashboard: Start Ray's dashboard with a local instance.

    Returns:
        The trials that failed for good -> their error.

    Raises:
        ValueError: If the cluster cannot be joined or has no node with the per-trial resources.
    """
    started = connect(address, dashboard)
    try:
        check_resources(cpus_per_trial, gpus_per_trial)
        trainable = tune.with_resources(_trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
        param_space = {"trial": tune.grid_search([t.to_json() for t in trials]), "spec": spec.to_json(),
                       "out": out_dir, "data": data, "tracking": list(tracking), "cpus": cpus_per_trial}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=os.path.join(out_dir, "ray"),
                                      failure_config=tune.FailureConfig(max_failures=max_failures), verbose=0,
                                      callbacks=[_Report(progress, out_dir)]))
        grid = tuner.fit()
        failed = {}
        for result in grid:
            if result.error is not None and result.config:
                trial = Trial(**result.config["trial"])
                if read_record(trial.folder(out_dir), trial.key) is None:
                    failed[trial] = " ".join(str(result.error).split())[-400:]
        return failed
    finally:
        if started:
            ray.shutdown()
            end_private_instance()
