"""`pipeline-vae tune` on a real local Ray instance with Optuna's TPE sampler and ASHA: records, the best
configuration as a re-runnable ablation spec, and a killed driver whose rerun trains no trial twice. No mocks."""
import json
import os

import pytest

from pipeline_vae.ablation.spec import load_spec
from pipeline_vae.ablation.trial import read_attempts, read_record
from pipeline_vae.search.runner import TRIALS_DIR, known_trials, trial_of
from pipeline_vae.search.spec import load_search
from tests.pipeline_vae.ablation.test_ray_executor import _kill_session, _wait_for, cli  # noqa: F401 (a fixture)

#: Six trials, one at a time (so seeded training and the seeded sampler make ASHA's decisions the same every run);
#: learning rates down to 1e-6 (no progress in 3 steps) against up to 1e-2, so a rung has trials to cut.
TINY = """\
name: tiny_search
trials: 6
seed: 0
budget: {epochs: 4, train_steps_per_epoch: 3, eval_steps_per_epoch: 1}
scheduler: {grace_period: 1, reduction_factor: 2}
base: {batch_size: 50, model: mlp, widths: [32]}
ops: {loss: {op: BetaVAELoss, args: {beta: 1.0}}}
search:
  learning_rate: {loguniform: [1.0e-6, 1.0e-2]}
  loss.beta: {uniform: [0.5, 2.0]}
  latent_dim: {choice: [2, 4]}
eval: {iw_samples: 2, n_images: 10}
"""


def _states(search, out, data):
    return {k["trial"].variant: k["state"] for k in known_trials(search, str(out), data)}


@pytest.mark.slow
def test_a_search_stops_weak_trials_and_writes_a_best_configuration_that_ablate_reruns(tmp_path, cli,  # noqa: F811
                                                                                        mnist_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    out = tmp_path / "out"
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    proc = cli(["tune", str(spec), "--out", str(out), "--max-concurrent", "1", "--track", "mlflow", "--tracking-uri",
                uri])
    stdout, stderr = proc.communicate(timeout=900)
    _kill_session(proc.pid)
    assert proc.returncode == 0, stderr
    search = load_search(str(spec))
    trials = known_trials(search, str(out), mnist_path)
    states = [k["state"] for k in trials]
    assert len(trials) == 6 and set(states) <= {"finished", "stopped"}, states
    assert "stopped" in states and "finished" in states, states  # ASHA cut at least one trial, others ran through
    for k in trials:
        if k["state"] == "stopped":  # stopped at a rung below the budget, its checkpoint gone: it stays stopped
            assert 1 <= k["stopped"]["epochs"] < 4 and len(k["stopped"]["elbo_per_epoch"]) == k["stopped"]["epochs"]
            assert read_record(k["folder"]) is None and not os.path.exists(os.path.join(k["folder"], "checkpoint"))
        else:  # ran its whole budget, then was evaluated: the record's per-epoch best is the search's number
            record = k["record"]
            assert record["epochs"] == 4 and record["key"] == k["trial"].key
            assert len(read_attempts(k["folder"])) == 1
    results = json.loads((out / "results.json").read_text())["trials"]
    finished = sorted((k for k in trials if k["state"] == "finished"), key=lambda k: -k["record"]["best_logged_elbo"])
    assert results[0]["trial"] == finished[0]["trial"].variant  # best first, by the metric
    assert results[0]["objective"] == pytest.approx(finished[0]["record"]["best_logged_elbo"])
    assert "[6/6]" in stdout and "stopped by ASHA after" in stdout and "re-run it: pipeline-vae ablate" in stdout
    # the best configuration, as an ablation spec that `ablate` accepts: 3 seeds, the whole budget, its values
    best = load_spec(str(out / "best.yaml"), data=mnist_path)
    params = finished[0]["params"]
    (variant, ) = best.variants
    assert best.seeds == [1, 2, 3] and best.budget["epochs"] == 4  # seeds other than the search's own (0)
    assert variant.settings["learning_rate"] == pytest.approx(params["learning_rate"])
    assert variant.settings["latent_dim"] == params["latent_dim"]
    assert variant.ops["loss"][0].args["beta"] == pytest.approx(params["loss.beta"])
    # tracked: a parent run for the search, a child per trial, ended as the trial ended
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent, ) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name.split("/")[0]: r for r in runs if r.data.tags.get("mlflow.parentRunId")
                == parent.info.run_id}
    assert parent.info.status == "FINISHED" and sorted(children) == sorted(k["trial"].variant for k in trials)
    for k in trials:
        assert children[k["trial"].variant].info.status == ("FINISHED" if k["state"] == "finished" else "KILLED")
    # the same command again: everything is done, nothing trains
    again = cli(["tune", str(spec), "--out", str(out)])
    stdout, stderr = again.communicate(timeout=300)
    _kill_session(again.pid)
    assert again.returncode == 0, stderr
    assert "6 done and 0 interrupted" in stdout and "0 to run" in stdout
    assert all(len(read_attempts(k["folder"])) <= 1 for k in known_trials(search, str(out), mnist_path))


def test_a_damaged_record_makes_its_trial_interrupted_and_says_why(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    search = load_search(str(spec))
    params = {"learning_rate": 1e-3, "loss.beta": 1.0, "latent_dim": 2}
    trial = trial_of(search, params)
    (tmp_path / TRIALS_DIR).mkdir()
    (tmp_path / TRIALS_DIR / f"{trial.variant}.json").write_text(json.dumps({"params": params}))
    folder = tmp_path / trial.folder("")
    folder.mkdir(parents=True)
    [known] = known_trials(search, str(tmp_path))
    assert known["state"] == "interrupted" and known["trouble"] is None  # no record yet: nothing to say
    (folder / "result.json").write_text(json.dumps({"key": trial.key, "iw_bound": -90.0})[:20])
    [known] = known_trials(search, str(tmp_path))
    assert known["state"] == "interrupted"
    assert known["trouble"] == "its result.json is not valid JSON (damaged or cut short)"
    (folder / "result.json").write_text(json.dumps({"key": trial.key, "iw_bound": -90.0}))
    [known] = known_trials(search, str(tmp_path))
    assert known["state"] == "finished" and known["trouble"] is None


@pytest.mark.slow
def test_a_killed_driver_then_the_same_command_trains_no_trial_twice(tmp_path, cli, mnist_path):  # noqa: F811
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    search = load_search(str(spec))
    out = tmp_path / "out"
    args = ["tune", str(spec), "--out", str(out), "--max-concurrent", "1"]
    proc = cli(args)
    try:
        _wait_for(lambda: sum(s != "interrupted" for s in _states(search, out, mnist_path).values()) >= 2
                  and "finished" in _states(search, out, mnist_path).values(), timeout=600,
                  what="two trials done, one of them finished")
        _kill_session(proc.pid)  # the driver and every Ray process it started
        proc.wait(timeout=30)
    finally:
        _kill_session(proc.pid)
    before = {k["trial"].variant: (k["state"], len(read_attempts(k["folder"])),
                                   json.dumps(k["record"] or k["stopped"], sort_keys=True))
              for k in known_trials(search, str(out), mnist_path)}
    damaged = next(name for name, (state, _, _) in before.items() if state == "finished")
    record = os.path.join(str(out), "runs", damaged, f"seed_{search.seed}", "result.json")
    with open(record) as file:
        text = file.read()
    with open(record, "w") as file:  # cut short, as a full disk or a copy broken off would leave it
        file.write(text[:len(text) // 2])
    before[damaged] = ("interrupted",) + before[damaged][1:]
    rerun = cli(args)
    stdout, stderr = rerun.communicate(timeout=900)
    _kill_session(rerun.pid)
    assert rerun.returncode == 0, stderr
    assert f"{damaged}: its result.json is not valid JSON (damaged or cut short); running it again" in stdout
    after = {k["trial"].variant: k for k in known_trials(search, str(out), mnist_path)}
    assert len(after) == 6 and all(k["state"] in ("finished", "stopped") for k in after.values())
    for name, (state, attempts, kept) in before.items():
        if state == "interrupted":  # running when the driver died (or damaged): proposed again first, and resumed
            assert after[name]["state"] != "interrupted"
            continue
        k = after[name]  # done before the kill: not trained again, its record as it was
        assert k["state"] == state and len(read_attempts(k["folder"])) == attempts
        assert json.dumps(k["record"] or k["stopped"], sort_keys=True) == kept
