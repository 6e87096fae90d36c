"""Ablations on a real local Ray instance (two CPUs): the same table as the local executor, a killed trial worker
retried to completion from its checkpoint, a killed driver rerun, two commands on one OUT, MLflow and W&B tracking,
and the cluster errors. No mocks: Ray Tune, MLflow's SQLite store and W&B's offline files are the real ones."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pipeline_vae.ablation.runner import run_ablation, run_dir
from pipeline_vae.ablation.spec import parse_spec
from pipeline_vae.ablation.trial import read_attempts, read_record
from pipeline_vae.resume import CHECKPOINT_DIR, last_checkpoint_epoch
from tests.pipeline_vae.ablation.test_runner import TINY as RUNNER_TINY
from tests.pipeline_vae.tracking.test_trackers import read_wandb_offline

TINY = RUNNER_TINY.replace("epochs: 1,", "epochs: 2,")
METRICS = ("iw_bound", "iw_bound_se", "elbo_analytic", "elbo_mc", "kl", "reconstruction", "active_units",
           "best_logged_elbo")


def _eval_elbos(folder):
    import csv
    with open(os.path.join(folder, "train_log.csv")) as file:
        return {(int(r["step"]), round(float(r["elbo"]), 3)) for r in csv.DictReader(file) if r["mode"] == "eval"}


def _session_processes(sid):
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid, s in zip(out[::2], out[1::2]) if int(s) == sid]


def _kill_session(sid):
    """SIGKILL every process of a session (a driver started with start_new_session and all its Ray processes:
    `ray stop` would kill every Ray process on the machine)."""
    for pid in _session_processes(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for(condition, timeout=240.0, what=""):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def cli(subprocess_env, mnist_path):
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")

    def start(args):
        return subprocess.Popen([exe, *args, "--data", mnist_path], env=subprocess_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    return start


@pytest.mark.slow
def test_ray_gives_the_local_table_and_tracks_a_parent_run_with_a_child_per_trial(tmp_path, mnist_path,
                                                                                    monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # Ray's token, W&B's cache, FE's history: not the user's
    spec = parse_spec(TINY, "tiny.yaml", data=mnist_path)  # (HOME is elsewhere: no MNIST cache there)
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    lines = io.StringIO()
    on_ray = run_ablation(spec, str(tmp_path / "ray"), data=mnist_path, stream=lines, executor="ray",
                          cpus_per_trial=1, track=("mlflow", "wandb"), tracking_uri=uri, experiment="abl")
    local = run_ablation(spec, str(tmp_path / "local"), data=mnist_path, stream=io.StringIO(), cpus_per_trial=1,
                         max_concurrent=2)
    # Same spec, seeds and threads per trial: bit-identical numbers, whichever executor ran them.
    assert [(r["variant"], r["seed"]) for r in on_ray] == [(r["variant"], r["seed"]) for r in local]
    for a, b in zip(on_ray, local):
        assert {k: a[k] for k in METRICS} == {k: b[k] for k in METRICS}, (a["variant"], a["seed"])
    tables = [[line.rsplit(" | ", 1)[0] for line in (tmp_path / name / "results.md").read_text().splitlines()
               if not line.startswith("Code: ")]  # the provenance line sums each run's own times
              for name in ("ray", "local")]  # every column but the last, the training time
    assert tables[0] == tables[1] and len(tables[0]) >= 4
    text = lines.getvalue()
    # one "done in MM:SS" line per trial (minutes vary with the machine's load)
    assert len(re.findall(r" done in \d\d:\d\d", text)) == 4
    assert "executor ray (local instance)" in text and "[4/4]" in text
    (experiment, ) = (tmp_path / "ray" / "ray").iterdir()  # Tune's own files: one folder per trial, named by it
    assert {"beta_seed0", "beta_seed1", "static_seed0", "static_seed1"} <= set(os.listdir(experiment))

    mlflow.set_tracking_uri(uri)
    try:
        runs = mlflow.search_runs(search_all_experiments=True)
    finally:
        mlflow.set_tracking_uri(None)
    parent = runs[runs["tags.mlflow.runName"] == "tiny"]
    assert len(parent) == 1 and len(runs) == 5 and set(runs["status"]) == {"FINISHED"}
    children = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"].iloc[0]]
    client = MlflowClient(uri)
    by_name = {name: row for name, row in zip(children["tags.mlflow.runName"], children.itertuples())}
    assert sorted(by_name) == ["beta/seed_0", "beta/seed_1", "static/seed_0", "static/seed_1"]
    for row in on_ray:
        child = children[children["tags.mlflow.runName"] == f"{row['variant']}/seed_{row['seed']}"].iloc[0]
        assert child["metrics.final/iw_bound"] == pytest.approx(row["iw_bound"], abs=1e-6)
        assert child["params.variant"] == row["variant"]
        history = {(m.step, round(m.value, 3)) for m in client.get_metric_history(child["run_id"], "eval/elbo")}
        assert history == _eval_elbos(run_dir(str(tmp_path / "ray"), row["variant"], row["seed"]))
    static = [r["iw_bound"] for r in on_ray if r["variant"] == "static"]
    assert parent["metrics.final/static/iw_bound"].iloc[0] == pytest.approx(sum(static) / 2, abs=1e-6)
    assert {a.path for a in client.list_artifacts(parent["run_id"].iloc[0])} >= {"results.md", "results.csv"}

    for row in on_ray:  # W&B: each trial's offline run, grouped under the spec, with its final numbers
        found = read_wandb_offline(run_dir(str(tmp_path / "ray"), row["variant"], row["seed"]))
        assert found["summary"]["final/iw_bound"] == pytest.approx(row["iw_bound"], abs=1e-6)
        assert found["config"]["variant"] == row["variant"]
    assert read_wandb_offline(str(tmp_path / "ray"))["summary"]["final/beta/iw_bound"] == pytest.approx(
        sum(r["iw_bound"] for r in on_ray if r["variant"] == "beta") / 2, abs=1e-6)


KILL = """\
name: kill
seeds: [0]
budget: {epochs: 3, train_steps_per_epoch: 60, eval_steps_per_epoch: 1}
eval: {iw_samples: 2, n_images: 10}
variants:
  - name: base
"""


@pytest.mark.slow
def test_a_killed_trial_worker_is_retried_and_resumes_from_its_last_epoch(tmp_path, cli):
    spec = tmp_path / "kill.yaml"
    spec.write_text(KILL)
    out = tmp_path / "out"
    folder = run_dir(str(out), "base", 0)
    proc = cli(["ablate", str(spec), "--out", str(out), "--executor", "ray"])
    try:
        _wait_for(lambda: last_checkpoint_epoch(os.path.join(folder, CHECKPOINT_DIR)) >= 1, what="epoch 1")
        worker = int(open(os.path.join(folder, ".lock")).read())  # the trial's Ray worker holds its lock
        os.kill(worker, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        _kill_session(proc.pid)
    assert proc.returncode == 0, stderr
    assert "base seed 0 failed, retrying" in stdout and "[1/1] base seed 0 done" in stdout
    attempts = read_attempts(folder)
    assert [a["pid"] for a in attempts][0] == worker and len(attempts) == 2
    assert attempts[1]["resumed_from_epoch"] >= 1  # not from zero
    record = read_record(folder)
    assert record["attempts"] == 2 and record["resumed_from_epoch"] == attempts[1]["resumed_from_epoch"]
    assert [step for step, _ in sorted(_eval_elbos(folder))] == [60, 120, 180]  # every epoch evaluated, once in the log
    assert not os.path.exists(os.path.join(folder, CHECKPOINT_DIR))  # finished: nothing left to resume


@pytest.mark.slow
def test_a_killed_driver_then_the_same_command_finishes_only_what_is_missing(tmp_path, cli):
    spec = tmp_path / "kill.yaml"
    spec.write_text(KILL.replace("seeds: [0]", "seeds: [0, 1]").replace("epochs: 3", "epochs: 2"))
    out = tmp_path / "out"
    first, second = run_dir(str(out), "base", 0), run_dir(str(out), "base", 1)
    args = ["ablate", str(spec), "--out", str(out), "--executor", "ray", "--max-concurrent", "1"]
    proc = cli(args)
    try:
        _wait_for(lambda: read_record(first) is not None or read_record(second) is not None, what="a record")
        _kill_session(proc.pid)  # the driver and every Ray process it started
        proc.wait(timeout=30)
    finally:
        _kill_session(proc.pid)
    done = first if read_record(first) is not None else second
    other = second if done == first else first
    kept = open(os.path.join(done, "result.json")).read()
    rerun = cli(args)
    stdout, stderr = rerun.communicate(timeout=300)
    _kill_session(rerun.pid)
    assert rerun.returncode == 0, stderr
    assert "2 trials; 1 already done" in stdout and stdout.count("] base seed ") == 1
    assert open(os.path.join(done, "result.json")).read() == kept and len(read_attempts(done)) == 1  # not rerun
    assert read_record(other) is not None and len(read_attempts(other)) <= 2


@pytest.mark.slow
def test_two_commands_on_one_out_train_each_trial_once(tmp_path, cli):
    spec = tmp_path / "two.yaml"
    spec.write_text(KILL.replace("seeds: [0]", "seeds: [0, 1]").replace("epochs: 3", "epochs: 1").replace(
        "train_steps_per_epoch: 60", "train_steps_per_epoch: 5"))
    out = tmp_path / "out"
    procs = [cli(["ablate", str(spec), "--out", str(out)]) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    for seed in (0, 1):
        assert len(read_attempts(run_dir(str(out), "base", seed))) == 1
    tables = [stdout[stdout.index("| variant"):] for stdout, _ in results]
    assert tables[0] == tables[1]


@pytest.mark.slow
def test_cluster_errors_are_one_line_before_any_trial(tmp_path, run_cli):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    out = tmp_path / "out"
    start = time.monotonic()
    dead = run_cli(["ablate", str(spec), "--out", str(out), "--executor", "ray", "--address", "127.0.0.1:1"])
    assert time.monotonic() - start < 60  # (Ray alone retries a dead address for about 14 minutes)
    assert dead.returncode == 2 and dead.stderr == ("pipeline-vae: error: --address: no Ray cluster answers at "
                                                    "127.0.0.1:1 (Connection refused); start one with `ray start "
                                                    "--head --port 1` on that node\n")
    auto = run_cli(["ablate", str(spec), "--out", str(out), "--executor", "ray", "--address", "auto"])
    assert auto.returncode == 2 and auto.stderr.startswith("pipeline-vae: error: --address: cannot join a Ray "
                                                           "cluster at auto: ") and auto.stderr.count("\n") == 1
    gpus = run_cli(["ablate", str(spec), "--out", str(out), "--executor", "ray", "--gpus-per-trial", "1"])
    assert gpus.returncode == 2 and gpus.stderr == ("pipeline-vae: error: --gpus-per-trial: 1 GPUs per trial, but the "
                                                    "largest of the cluster's 1 node(s) has 0\n")
    local = run_cli(["ablate", str(spec), "--out", str(out), "--address", "auto"])
    assert local.returncode == 2 and local.stderr == "pipeline-vae: error: --address needs --executor ray\n"
    assert not list(out.glob("runs/*"))  # no trial started
    other = tmp_path / "other"
    other.mkdir()
    (other / "spec.json").write_text(json.dumps({"name": "binarization"}))
    taken = run_cli(["ablate", str(spec), "--out", str(other)])
    assert taken.returncode == 2 and taken.stderr == (f"pipeline-vae: error: --out: {other} holds the results of spec "
                                                      "'binarization', not 'tiny'; use another --out\n")


STRANGER = """
import sys, ray
try:
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
except ConnectionError:
    print("REFUSED")
else:
    print("JOINED", ray.cluster_resources())
"""


@pytest.mark.slow
def test_the_local_instance_refuses_a_process_without_its_token(tmp_path, monkeypatch):
    """Ray's servers listen on every interface here, so the local instance is private by token: a process without it
    (on this machine, at the instance's own address) cannot join; the token leaves the environment at shutdown."""
    import ray

    from pipeline_vae.ablation import ray_executor
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert ray_executor.connect(None) is True
    try:
        gcs = ray.get_runtime_context().gcs_address
        assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
        stranger_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        joined = subprocess.run([sys.executable, "-c", STRANGER, gcs], env=stranger_env, capture_output=True,
                                text=True, timeout=120)
        assert "REFUSED" in joined.stdout and "JOINED" not in joined.stdout, joined.stdout + joined.stderr[-2000:]
    finally:
        ray.shutdown()
        ray_executor.end_private_instance()
    assert "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_MODE" not in os.environ
