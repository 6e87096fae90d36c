"""One trial of an ablation, (variant, seed): claimed, trained (resumably), evaluated and recorded.

Both executors (local processes, Ray Tune) run exactly `run_trial`, in a process of its own, so the table does not
depend on where a trial ran. In `OUT/runs/<variant>/seed_<seed>/`:

    .lock           the trial's claim: a `flock` held by the process training it (the kernel drops it when that
                    process dies, however it dies); a second `ablate` on the same OUT waits for it, then finds the
                    record
    trial.json      which definition of the variant (`run_key`) the folder's files belong to
    attempts.jsonl  one line per start: pid, host, time, the epoch it resumed from
    result.json     the record: the evaluation, written atomically once the trial is done; the table is built from these
    checkpoint/     FE's RestoreWizard state after every epoch: a retried or rerun trial resumes from its last epoch
                    (removed once the record is written)
    ...             the run's own files (models, log, samples, tracking.json)

A folder whose `trial.json` names another definition (an edited variant, budget, evaluation or data) is cleared first.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from pipeline_vae import settings as run_settings
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.run_lock import LOCK_FILE, RunLock, RunLockedError

RECORD_FILE = "result.json"
TRIAL_FILE = "trial.json"
ATTEMPTS_FILE = "attempts.jsonl"
#: Where the local executor sends a trial's console output.
RUN_LOG = "run.log"
#: The thread settings a trial with N CPUs gets (TF ignores OMP_NUM_THREADS; FE's Pipeline overwrites it and the TF
#: ones with the core count unless FE_NUM_THREADS is set). They must be set before TensorFlow is imported.
THREAD_VARIABLES = ("FE_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class Trial:
    """One (variant, seed) of a spec, and the definition it runs (`key`, see `run_key`)."""
    variant: str
    seed: int
    key: str

    @property
    def name(self) -> str:
        """`<variant> seed <seed>`, for people."""
        return f"{self.variant} seed {self.seed}"

    @property
    def slug(self) -> str:
        """`<variant>_seed<seed>`: the trial's stable name in Ray Tune (and its folder under OUT/ray/)."""
        return f"{self.variant}_seed{self.seed}"

    def folder(self, out_dir: str) -> str:
        """Its run folder."""
        return os.path.join(out_dir, "runs", self.variant, f"seed_{self.seed}")

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


#: Settings added after records were first published: left out of a trial's key while at their default, so the records
#: made before them still name the same definition.
LATER_SETTINGS = ("lr_schedule", "protocol", "prior", "prior_components", "upper_latent_dim", "flow",
                  "flow_steps", "kl_warmup")


def run_key(spec: Any, variant: Any, data: Optional[str] = None) -> str:
    """`name@digest`: the digest covers the variant, the budget, the evaluation and the data (and `PIPELINE_VAE_TINY`
    when set), so editing any of them re-runs the variant while untouched variants keep their results."""
    definition = variant.to_json()
    definition["settings"] = {name: value for name, value in definition["settings"].items()
                              if not (name in LATER_SETTINGS and value == run_settings.default(name))}
    from pipeline_vae.resolve import TINY_ENV
    what = {"variant": definition, "budget": spec.budget, "eval": spec.eval, "data": spec.data_source(data).to_json()}
    if os.environ.get(TINY_ENV) == "1":  # a tiny trial's record never stands for the spec's own budget
        what["tiny"] = True
    blob = json.dumps(what, sort_keys=True)
    return f"{variant.name}@{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def trials_of(spec: Any, data: Optional[str] = None) -> List[Trial]:
    """Every (variant, seed) of `spec`, in the table's order."""
    return [Trial(v.name, seed, run_key(spec, v, data)) for v in spec.variants for seed in spec.seeds]


def load_record(folder: str, key: Optional[str] = None) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The record in `folder` that counts (for definition `key`, when given) and None, or None and why not (None: no
    file): `read_record` and `record_trouble` from one read of the file."""
    path = os.path.join(folder, RECORD_FILE)
    if not os.path.lexists(path):
        return None, None
    try:
        with open(path) as file:
            record = json.load(file)
    except OSError as error:
        return None, f"its {RECORD_FILE} cannot be read ({error.strerror or error})"
    except ValueError:
        return None, f"its {RECORD_FILE} is not valid JSON (damaged or cut short)"
    if not isinstance(record, dict):
        return None, f"its {RECORD_FILE} holds {type(record).__name__}, not a record"
    if key is not None and record.get("key") != key:
        return None, f"its {RECORD_FILE} records another definition ({record.get('key')!r}, not {key!r})"
    return record, None


def read_record(folder: str, key: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The trial's record in `folder`, if there is one (for definition `key`, when given)."""
    return load_record(folder, key)[0]


def record_trouble(folder: str, key: Optional[str] = None) -> Optional[str]:
    """Why the record file in `folder` does not count (for definition `key`, when given), when there is one that does
    not: a damaged file, or one for another definition. None when the record is good or there is none. The runner says
    it before running the trial again, so a record that is passed over is never passed over silently."""
    return load_record(folder, key)[1]


def epoch_seconds(folder: str) -> Optional[float]:
    """FE's per-epoch training time (`epoch_time(sec)` of the `train` rows of the run's `train_log.csv`) summed over
    every epoch the run has trained, across all its attempts (a resumed run's log keeps the earlier epochs); the
    per-epoch validation passes and start-up are not in it. None when the log is missing or holds no such time."""
    import csv
    from pipeline_vae.run_config import FILES
    try:
        with open(os.path.join(folder, FILES["log"]), newline="") as file:
            times = {}
            for row in csv.DictReader(file):
                if row.get("mode") == "train" and row.get("epoch_time(sec)"):
                    times[int(row["epoch"])] = float(row["epoch_time(sec)"])  # a repeated epoch: its last attempt
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        return None
    return round(sum(times.values()), 1) if times else None


def trial_row(trial: "Trial", record: Dict[str, Any], out_dir: str) -> Dict[str, Any]:
    """A report's row for a finished trial: its record, with `train_epoch_seconds` read from its run folder when the
    record predates that field."""
    row = {"variant": trial.variant, "seed": trial.seed, **record}
    if row.get("train_epoch_seconds") is None:
        row["train_epoch_seconds"] = epoch_seconds(trial.folder(out_dir))
    return row


def read_attempts(folder: str) -> List[Dict[str, Any]]:
    """The trial's attempts so far, oldest first."""
    try:
        with open(os.path.join(folder, ATTEMPTS_FILE)) as file:
            return [json.loads(line) for line in file if line.strip()]
    except (OSError, ValueError):
        return []


def last_error(path: Optional[str], missing: str = "no log") -> str:
    """The last error line (`SomethingError: ...`) of a failed trial's log or error file, else its last line: for the
    failure message only (results never come from console output)."""
    import re
    try:
        with open(path or "", errors="replace") as file:
            lines = [line.strip() for line in file if line.strip()]
    except OSError:
        return missing
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return (errors or lines or ["no output"])[-1][:400]


def thread_env(cpus: Optional[int]) -> Dict[str, str]:
    """Environment variables that hold a trial's TensorFlow and FastEstimator to `cpus` threads ({} for None)."""
    return {} if not cpus else {name: str(cpus) for name in THREAD_VARIABLES}


def _claim(folder: str, trial: Trial, say: Callable[[str], None], poll: float) -> RunLock:
    """Take the trial's lock, waiting while another live process holds it."""
    lock = RunLock(folder)
    waiting = False
    while True:
        try:
            return lock.acquire()
        except RunLockedError as err:
            if not waiting:
                say(f"{trial.name}: {err}; waiting")
                waiting = True
            time.sleep(poll)


def _prepare(folder: str, trial: Trial) -> None:
    """Clear files of another definition of this trial; note which definition the folder holds now."""
    path = os.path.join(folder, TRIAL_FILE)
    try:
        with open(path) as file:
            same = json.load(file).get("key") == trial.key
    except (OSError, ValueError, AttributeError):
        same = False
    if same:
        return
    for name in os.listdir(folder):
        target = os.path.join(folder, name)
        if name == RUN_LOG:  # open (appending) in the process that writes it: emptied, not removed
            os.truncate(target, 0)
        elif name != LOCK_FILE:
            shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)
    write_json_atomic(path, trial.to_json())


def code_version(root: Optional[str] = None) -> Optional[str]:
    """The git commit of the code this process runs (or of the checkout at `root`): "<sha>", "<sha>+dirty" when tracked
    files differ from it, or None when `root` is not the top of a git checkout (an installed wheel, even one inside
    some other repository; a copied tree) or git is missing."""
    root = root or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        top = subprocess.run(["git", "-C", root, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
        if os.path.realpath(top) != os.path.realpath(root):
            return None
        sha = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "") if sha else None


def run_trial(spec: Any, trial: Trial, out_dir: str, data: Optional[str] = None,
              tracking: Sequence[Dict[str, Any]] = (), on_epoch: Optional[Callable[[int, float], None]] = None,
              say: Callable[[str], None] = print, poll: float = 1.0) -> Dict[str, Any]:
    """Run one trial to its record (or return the record a previous run left).

    Args:
        spec: The spec (`pipeline_vae.ablation.spec.Spec`).
        trial: Which (variant, seed) and definition.
        out_dir: The ablation's folder.
        data: The data (name or path) instead of the spec's.
        tracking: Tracker settings (`pipeline_vae.tracking.logger_for`), one per tool to log the trial to.
        on_epoch: Called with (epoch, test ELBO) after every evaluation.
        say: Where notes go (waiting for another process).
        poll: Seconds between tries of a lock another process holds.

    Returns:
        The record: `key`, `variant`, `seed`, the evaluation (see `train_and_evaluate`), `train_epoch_seconds`
        (`epoch_seconds`: the training time of every epoch, whichever attempt trained it), `attempts` (how many
        starts it took), `resumed_from_epoch` (0 if it never resumed), `host`, `commit` (`code_version` of the
        attempt that finished: the evaluation's code) and `train_commits` (every attempt's, in order: the code that
        trained it; "unknown" for attempts started before they were noted).

    Raises:
        RunFailed, ValueError: From training or evaluation (nothing is recorded; a retry resumes).
    """
    folder = trial.folder(out_dir)
    os.makedirs(folder, exist_ok=True)
    lock = _claim(folder, trial, say, poll)
    try:
        record = read_record(folder, trial.key)
        if record is not None:  # finished by another process while this one waited, or before
            return record
        _prepare(folder, trial)
        from pipeline_vae.resume import CHECKPOINT_DIR, last_checkpoint_epoch
        resumed = last_checkpoint_epoch(os.path.join(folder, CHECKPOINT_DIR))
        commit = code_version()
        with open(os.path.join(folder, ATTEMPTS_FILE), "a") as file:
            file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "resumed_from_epoch": resumed,
                                   "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                   "commit": commit}) + "\n")
        metrics = train_and_evaluate(spec, spec.variant(trial.variant), trial.seed, folder, data, tracking, on_epoch,
                                     trial=trial)
        attempts = read_attempts(folder)
        resumed_from = max(a.get("resumed_from_epoch", 0) for a in attempts)
        record = {"key": trial.key, "variant": trial.variant, "seed": trial.seed, **metrics,
                  "train_epoch_seconds": epoch_seconds(folder), "attempts": len(attempts),
                  "resumed_from_epoch": resumed_from, "host": socket.gethostname(), "commit": commit,
                  "train_commits": list(dict.fromkeys(str(a.get("commit") or "unknown") for a in attempts))}
        write_json_atomic(os.path.join(folder, RECORD_FILE), record)
        shutil.rmtree(os.path.join(folder, CHECKPOINT_DIR), ignore_errors=True)  # done: nothing left to resume
        return record
    finally:
        lock.release()


def train_and_evaluate(spec: Any, variant: Any, seed: int, save_dir: str, data: Optional[str] = None,
                       tracking: Sequence[Dict[str, Any]] = (),
                       on_epoch: Optional[Callable[[int, float], None]] = None,
                       trial: Optional[Trial] = None) -> Dict[str, Any]:
    """Train one variant with one seed on the spec's budget (resuming from `save_dir/checkpoint` if a previous attempt
    left one), then evaluate it, in this process.

    Fairness: the same budget, data order and initial weights (seeded) per seed, and one evaluation for all: the
    first `eval.n_images` test images (MNIST's statically binarized at 0.5 for every Bernoulli variant, whatever it
    trained on, and under protocol dynamic_mnist its seeded draw of binary images; otherwise as the run's
    configuration says), ELBO with the closed-form KL, the IW bound with `eval.iw_samples` (an interrupted bound
    continues from its partial file, as `pipeline-vae evaluate`'s does), KL, active units and bits/dim, all with the
    same noise (seed 0).

    Returns:
        The evaluation metrics (see `pipeline_vae.metrics.evaluate`) plus `train_seconds` (this attempt's; reports
        name the resumed trials), `eval_seconds`, `best_logged_elbo` (the best per-epoch test ELBO seen in training),
        `epochs` and `parameters`.

    Raises:
        RunFailed: If training ended before any evaluation.
        ValueError: If the data cannot be read or has fewer test images than `eval.n_images`.
    """
    from ops.names import DEFAULT_LIKELIHOOD
    from pipeline_vae.ablation import RunFailed
    from pipeline_vae.builders import METRIC, build_estimator
    from pipeline_vae.data import load_data
    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import evaluate
    from pipeline_vae.resolve import resolve
    from pipeline_vae.run_config import MNIST_BINARIZE_THRESHOLD, iw_progress_file
    from pipeline_vae.tracking import logger_for
    from pipeline_vae.tracking.base import ended_from_outside
    from pipeline_vae.traces import EpochCallback

    images = load_data(spec.data_source(data))
    ops = variant.build_ops()
    config, images = resolve({**variant.settings, **spec.budget, **spec.eval, "seed": seed, "resume": True}, images,
                             ops)
    n_images = config.n_images or len(images.test)
    if n_images > len(images.test):
        raise ValueError(f"eval.n_images: {n_images} test images asked for, but {images.description} has "
                         f"{len(images.test)}")
    name = trial.name if trial else f"{variant.name} seed {seed}"
    loggers = [logger_for(t, save_dir=save_dir, run_name=f"{variant.name}/seed_{seed}", finish=False,
                          params={"ablation": spec.name, "variant": variant.name, "trial": name})
               for t in tracking]
    extra = loggers + ([EpochCallback(on_epoch, METRIC)] if on_epoch else [])
    estimator = build_estimator(config, images, save_dir=save_dir, ops=ops, traces=extra)
    try:
        start = time.perf_counter()
        summary = estimator.fit(summary=variant.name, warmup=False)  # graph_for checked the graph
        train_seconds = time.perf_counter() - start
        history = summary.history["eval"].get(METRIC, {})
        if not history:
            raise RunFailed(f"{name}: training ended before any evaluation")
        print("pipeline-vae-ablate: evaluating", flush=True)
        vae = CVAE.load(save_dir)
        if vae.likelihood.name == DEFAULT_LIKELIHOOD and images.kind == "mnist":  # one evaluation for every
            vae = CVAE(vae.encoder, vae.decoder, DEFAULT_LIKELIHOOD, MNIST_BINARIZE_THRESHOLD,  # binarization
                       config=vae.config, prior=vae.prior, flow=vae.flow)  # (the run's own prior and flow)
        partial = iw_progress_file(save_dir, config.iw_samples, 0) if config.iw_samples else None
        metrics = evaluate(vae, images.test_images(n_images), iw_samples=config.iw_samples, seed=0,
                           show_progress=False, resume_file=partial)  # an interrupted bound continues
        metrics.update(train_seconds=round(train_seconds, 1), eval_seconds=metrics.pop("seconds"),
                       best_logged_elbo=max(float(v) for v in history.values()), epochs=config.epochs,
                       parameters=int(vae.encoder.count_params() + vae.decoder.count_params()))
    except BaseException as err:
        for logger in loggers:
            logger.close(failed=True, killed=ended_from_outside(err))
        raise
    for logger in loggers:
        logger.log_summary(metrics)
        logger.close()
    return metrics


def _main(argv: List[str]) -> int:
    """One trial in its own process (the local executor's): SPEC_JSON VARIANT SEED KEY OUT [DATA|-] [TRACKING_JSON]."""
    from pipeline_vae.ablation.spec import Spec
    spec_path, variant, seed, key, out_dir = argv[:5]
    data = argv[5] if len(argv) > 5 and argv[5] != "-" else None
    tracking = json.loads(argv[6]) if len(argv) > 6 else []
    with open(spec_path) as file:
        spec = Spec.from_json(json.load(file), path=spec_path)
    run_trial(spec, Trial(variant, int(seed), key), out_dir, data, tracking, say=lambda text: print(text, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
