"""Run an ablation: every variant x seed trained on the same budget and evaluated by the same code.

    rows = run_ablation(load_spec("apphub/ablations/binarization.yaml"), "runs/ablations/binarization")

FastEstimator's `GridSearch` walks the grid (variant x seed) and keeps its summary in `OUT/search.json` after every
run, so repeating the command skips finished runs (resume after a crash or Ctrl-C). Each run trains in its own Python
process (`python -m pipeline_vae.ablation.runner`): every run starts from the same process state, so a variant's
numbers do not depend on which variants ran before it, and a run can be reproduced alone (`fe.enable_deterministic`
makes two processes with the same seed bit-identical; runs inside one process are not). Each run writes
`OUT/runs/<variant>/seed_<seed>/` (the models, log, samples, `result.json` and the run's console output `run.log`).

Fairness: the same budget (epochs, steps), data order and initial weights (seeded) per seed, and one evaluation for
all: the first `eval.n_images` test images (MNIST's statically binarized at 0.5 for every Bernoulli variant, whatever
it trained on; otherwise as each run's configuration says), ELBO with the closed-form KL, the IW bound with
`eval.iw_samples`, KL, active units and bits/dim, all with the same noise (seed 0).
"""
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, TextIO

from fastestimator.search import GridSearch
from tqdm import tqdm

from pipeline_vae.ablation import RunFailed
from pipeline_vae.ablation.spec import Spec, Variant
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.run_lock import RunLock

SEARCH_NAME = "search"
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
RUN_LOG = "run.log"
#: What the table ranks by.
OPTIMIZE_FIELD = "iw_bound"
_EPOCH_LINE = re.compile(r"FastEstimator-Eval: step: \d+; epoch: (\d+);.*?(?<!\w)elbo: (-?[\d.]+)")


class AtomicGridSearch(GridSearch):
    """FE's GridSearch, writing its summary file through a temporary name and a rename (FE writes it in place, so a
    kill during the write would lose every finished run), and without FE's one-dict-per-run console lines (the runner
    prints its own progress)."""
    def save(self, save_dir: str) -> None:
        write_json_atomic(os.path.join(save_dir, f"{self.name}.json"), self._get_state())

    def evaluate(self, **kwargs: Any) -> Dict[str, Any]:
        with contextlib.redirect_stdout(io.StringIO()):
            return super().evaluate(**kwargs)


def run_key(spec: Spec, variant: Variant, data: Optional[str] = None) -> str:
    """`name@digest`: the digest covers the variant, the budget, the evaluation and the data, so editing any of them
    re-runs the variant while untouched variants keep their results."""
    blob = json.dumps({"variant": variant.to_json(), "budget": spec.budget, "eval": spec.eval,
                       "data": spec.data_source(data).to_json()}, sort_keys=True)
    return f"{variant.name}@{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def run_dir(out_dir: str, variant: str, seed: int) -> str:
    """Where one run's files go."""
    return os.path.join(out_dir, "runs", variant, f"seed_{seed}")


def train_and_evaluate(spec: Spec, variant: Variant, seed: int, save_dir: str, data: Optional[str] = None) -> Dict:
    """Train one variant with one seed on the spec's budget, then evaluate it (in this process).

    Args:
        spec: The spec.
        variant: The variant to train.
        seed: Its seed.
        save_dir: The run's folder.
        data: The data (name or path) to use instead of the spec's.

    Returns:
        The evaluation metrics (see `pipeline_vae.metrics.evaluate`) plus `train_seconds`, `eval_seconds`,
        `best_logged_elbo` (the best per-epoch test ELBO seen in training), `epochs` and `parameters`.

    Raises:
        RunFailed: If training ended before any evaluation.
        ValueError: If the data cannot be read or has fewer test images than `eval.n_images`.
    """
    from pipeline_vae.builders import METRIC, get_estimator
    from pipeline_vae.data import load_data
    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import evaluate
    from pipeline_vae.slots import DEFAULT_LOSS

    images = load_data(spec.data_source(data))
    n_images = spec.eval["n_images"] or len(images.test)
    if n_images > len(images.test):
        raise ValueError(f"eval.n_images: {n_images} test images asked for, but {images.description} has "
                         f"{len(images.test)}")
    settings = variant.settings
    likelihood = settings.get("likelihood") or images.default_likelihood
    estimator = get_estimator(epochs=spec.budget["epochs"], batch_size=settings["batch_size"],
                              latent_dim=settings["latent_dim"], learning_rate=settings["learning_rate"],
                              save_dir=save_dir, train_steps_per_epoch=spec.budget["train_steps_per_epoch"],
                              eval_steps_per_epoch=spec.budget["eval_steps_per_epoch"], seed=seed,
                              ops=variant.build_ops(likelihood), data=images, log_steps=0,
                              loss=settings.get("loss", DEFAULT_LOSS), model=settings["model"],
                              widths=settings["widths"], likelihood=likelihood,
                              binarize_threshold=settings.get("binarize_threshold"))
    start = time.perf_counter()
    summary = estimator.fit(summary=variant.name)
    train_seconds = time.perf_counter() - start
    history = summary.history["eval"].get(METRIC, {})
    if not history:
        raise RunFailed(f"{variant.name} seed {seed}: training ended before any evaluation")
    print("pipeline-vae-ablate: evaluating", flush=True)
    vae = CVAE.load(save_dir)
    if vae.likelihood.name == "bernoulli" and images.kind == "mnist":  # one evaluation for every binarization variant
        vae = CVAE(vae.encoder, vae.decoder, "bernoulli", 0.5, config=vae.config)
    metrics = evaluate(vae, images.test_images(n_images), iw_samples=spec.eval["iw_samples"], seed=0,
                       show_progress=False)
    metrics.update(train_seconds=round(train_seconds, 1), eval_seconds=metrics.pop("seconds"),
                   best_logged_elbo=max(float(v) for v in history.values()), epochs=spec.budget["epochs"],
                   parameters=int(vae.encoder.count_params() + vae.decoder.count_params()))
    return metrics


def _watch(proc: subprocess.Popen, log_path: str, epochs: int, say: Callable[[str], None]) -> None:
    """Wait for `proc`, reporting each finished epoch (and the start of evaluation) from its log."""
    seen, evaluating = 0, False
    while True:
        finished = proc.poll() is not None
        try:
            with open(log_path, errors="replace") as file:
                text = file.read()
        except OSError:
            text = ""
        for epoch, elbo in _EPOCH_LINE.findall(text)[seen:]:
            say(f"    epoch {epoch}/{epochs}: test elbo {float(elbo):.2f}")
            seen += 1
        if not evaluating and "pipeline-vae-ablate: evaluating" in text:
            say("    evaluating")
            evaluating = True
        if finished:
            return
        time.sleep(1.0)


def _last_error(log_path: str) -> str:
    try:
        with open(log_path, errors="replace") as file:
            lines = [line.strip() for line in file if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return (errors or lines or ["no output"])[-1]


def run_ablation(spec: Spec, out_dir: str, data: Optional[str] = None, stream: Optional[TextIO] = None) -> List[Dict]:
    """Run every variant x seed not yet finished in `out_dir`, then return one row per run of the current spec.

    Args:
        spec: The validated spec.
        out_dir: The ablation's folder (created if needed); rerunning with the same folder resumes.
        data: The data (name or path) for every run instead of the spec's `data` (None: the spec's, else MNIST).
        stream: Where progress lines go (default stdout).

    Returns:
        One dict per (variant, seed) in spec order: `variant`, `seed`, and the run's metrics.

    Raises:
        RunFailed: If a run's process fails (the message names the variant, seed, log and last error line).
        RunLockedError: If another process is running an ablation in `out_dir`.
    """
    stream = stream or sys.stdout

    def say(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    os.makedirs(out_dir, exist_ok=True)
    lock = RunLock(out_dir).acquire()  # a second `ablate` on the same folder would run the same grid twice
    spec_path = os.path.join(out_dir, SPEC_FILE)
    write_json_atomic(spec_path, spec.to_json())
    keys = {run_key(spec, v, data): v for v in spec.variants}
    search_file = os.path.join(out_dir, f"{SEARCH_NAME}.json")
    finished = set()
    if os.path.isfile(search_file):
        with open(search_file) as file:
            finished = {(s["param"]["variant"], s["param"]["seed"]) for s in json.load(file).get("search_summary", [])}
    total = len(keys) * len(spec.seeds)
    todo = [(key, seed) for key in keys for seed in spec.seeds if (key, seed) not in finished]
    say(f"ablation {spec.name}: {len(spec.variants)} variants x {len(spec.seeds)} seeds = {total} runs; "
        f"{total - len(todo)} already done in {out_dir}")
    started = time.perf_counter()
    count = [0]

    def eval_fn(search_idx: int, variant: str, seed: int) -> Dict[str, Any]:
        del search_idx
        count[0] += 1
        name = keys[variant].name
        folder = run_dir(out_dir, name, seed)
        if os.path.isdir(folder):  # an interrupted attempt, or an older definition of the variant: start clean
            shutil.rmtree(folder)
        os.makedirs(folder)
        elapsed = time.perf_counter() - started
        remaining = elapsed / (count[0] - 1) * (len(todo) - count[0] + 1) if count[0] > 1 else None
        eta = "?" if remaining is None else tqdm.format_interval(remaining)
        say(f"[{count[0]}/{len(todo)}] {name} seed {seed} (elapsed {tqdm.format_interval(elapsed)}, ETA {eta})")
        result_path = os.path.join(folder, RESULT_FILE)
        log_path = os.path.join(folder, RUN_LOG)
        command = [sys.executable, "-m", "pipeline_vae.ablation.runner", spec_path, name, str(seed), folder]
        command += [data] if data else []
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        run_start = time.perf_counter()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                _watch(proc, log_path, spec.budget["epochs"], say)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if proc.returncode != 0 or not os.path.isfile(result_path):
            raise RunFailed(f"{name} seed {seed} failed (exit code {proc.returncode}): {_last_error(log_path)}; "
                            f"full output in {log_path}")
        with open(result_path) as file:
            result = json.load(file)
        took = tqdm.format_interval(time.perf_counter() - run_start)
        say(f"    done in {took}: IW bound {result.get('iw_bound', float('nan')):.2f}, ELBO "
            f"{result['elbo_analytic']:.2f}, KL {result['kl']:.2f}, active units {result['active_units']}")
        return result

    search = AtomicGridSearch(eval_fn=eval_fn, params={"variant": list(keys), "seed": list(spec.seeds)},
                              best_mode="max", optimize_field=OPTIMIZE_FIELD, name=SEARCH_NAME)
    search.fit(save_dir=out_dir)
    lock.release()  # (on an exception the lock goes with the RunLock object, or at the latest with the process)
    results = {(s["param"]["variant"], s["param"]["seed"]): s["result"] for s in search.get_search_summary()}
    return [{"variant": variant.name, "seed": seed, **results[(key, seed)]} for key, variant in keys.items()
            for seed in spec.seeds]


def _main(argv: List[str]) -> int:
    """One run in its own process: SPEC_JSON VARIANT SEED SAVE_DIR [DATA]."""
    spec_path, name, seed, save_dir = argv[:4]
    data = argv[4] if len(argv) > 4 else None
    with open(spec_path) as file:
        spec = Spec.from_json(json.load(file), path=spec_path)
    result = train_and_evaluate(spec, spec.variant(name), int(seed), save_dir, data)
    write_json_atomic(os.path.join(save_dir, RESULT_FILE), result)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
