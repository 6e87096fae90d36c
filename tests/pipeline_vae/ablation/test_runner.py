import csv
import json
import math
import os
import subprocess

import numpy as np
import pytest

from pipeline_vae.ablation import RunFailed
from pipeline_vae.ablation.report import write_reports
from pipeline_vae.ablation.runner import run_ablation, run_dir, run_key
from pipeline_vae.ablation.trial import code_version, read_attempts, read_record, record_trouble
from pipeline_vae.ablation.spec import parse_spec

TINY = """\
name: tiny
seeds: [0, 1]
budget: {epochs: 1, train_steps_per_epoch: 5, eval_steps_per_epoch: 1}
eval: {iw_samples: 2, n_images: 10}
variants:
  - name: static
  - name: beta
    ops: {loss: {op: BetaVAELoss, args: {beta: 0.5}}}
"""


def _check_rows_and_table_against_evaluate(spec, rows, out, mnist_path):
    """Every row's numbers are `evaluate()` of that run's saved models, recomputed here with the spec's common
    evaluation (first n_images test digits binarized at 0.5, K, noise seed 0); the table's cells are the mean ± sd
    over seeds of those recomputed numbers."""
    import numpy as np

    from pipeline_vae.data import load_mnist
    import tensorflow as tf

    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import evaluate
    images = load_mnist(path=mnist_path).x_test[:spec.eval["n_images"]]
    recomputed = {}
    for row in rows:
        folder = run_dir(out, row["variant"], row["seed"])
        vae = CVAE(*(tf.keras.models.load_model(os.path.join(folder, f"{kind}_best_loss.h5"), compile=False)
                     for kind in ("encoder", "decoder")), "bernoulli", 0.5)
        m = evaluate(vae, images, iw_samples=spec.eval["iw_samples"], seed=0, show_progress=False)
        for key in ("iw_bound", "elbo_analytic", "elbo_mc", "kl", "reconstruction", "active_units"):
            assert row[key] == pytest.approx(m[key], abs=1e-4), (row["variant"], row["seed"], key)
        recomputed.setdefault(row["variant"], []).append(m)
    with open(write_reports(spec, rows, out)["md"]) as file:
        table = {line.split(" | ")[0].strip("| *").split("*")[0]: line.split(" | ") for line in file
                 if line.startswith("| ") and "---" not in line}
    for variant, runs in recomputed.items():
        for column, key in ((1, "iw_bound"), (3, "elbo_analytic"), (5, "kl")):
            values = [m[key] for m in runs]
            assert table[variant][column] == f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}", (variant, key)


def test_code_version_names_the_checkout_and_says_when_it_is_dirty(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *args: subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                                       capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "one")
    sha = git("rev-parse", "HEAD")
    assert len(sha) == 40 and code_version(str(repo)) == sha
    (repo / "b.py").write_text("untracked\n")  # untracked files do not make it dirty
    assert code_version(str(repo)) == sha
    (repo / "a.py").write_text("x = 2\n")
    assert code_version(str(repo)) == sha + "+dirty"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert code_version(str(plain)) is None  # not a checkout
    (repo / "site").mkdir()
    assert code_version(str(repo / "site")) is None  # inside another checkout (e.g. a venv in a repository)


@pytest.mark.slow
def test_two_variants_two_seeds_then_a_repeat_skips_every_finished_run(tmp_path, mnist_path, capsys):
    spec = parse_spec(TINY, "tiny.yaml")
    out = str(tmp_path / "out")
    rows = run_ablation(spec, out, data=mnist_path)
    assert [(r["variant"], r["seed"]) for r in rows] == [("static", 0), ("static", 1), ("beta", 0), ("beta", 1)]
    for row in rows:
        for key in ("iw_bound", "elbo_analytic", "elbo_mc", "kl", "reconstruction", "train_seconds", "best_logged_elbo"):
            assert math.isfinite(row[key]), (row["variant"], key)
        assert row["n_images"] == 10 and row["iw_samples"] == 2 and row["epochs"] == 1
        assert row["iw_bound"] < 0 and row["kl"] >= 0
        assert os.path.isfile(os.path.join(run_dir(out, row["variant"], row["seed"]), "encoder_best_loss.h5"))
    # Seeds matter, and the two variants of one seed start from the same weights but train differently.
    assert rows[0]["iw_bound"] != rows[1]["iw_bound"] and rows[0]["elbo_analytic"] != rows[2]["elbo_analytic"]
    for row in rows:  # one record per trial, trained once, naming the definition it ran
        folder = run_dir(out, row["variant"], row["seed"])
        assert read_record(folder)["key"] == run_key(spec, spec.variant(row["variant"]), mnist_path)
        assert row["attempts"] == 1 and len(read_attempts(folder)) == 1 and row["resumed_from_epoch"] == 0
        assert row["commit"] == code_version()  # the code the trial ran (None outside a git checkout)
        assert row["train_commits"] == [str(code_version() or "unknown")]
        with open(os.path.join(folder, "train_log.csv")) as file:
            epochs = [float(r["epoch_time(sec)"]) for r in csv.DictReader(file) if r["epoch_time(sec)"]]
        assert len(epochs) == 1 and row["train_epoch_seconds"] == round(epochs[0], 1) > 0  # FE's time of epoch 1
    _check_rows_and_table_against_evaluate(spec, rows, out, mnist_path)
    capsys.readouterr()

    mtimes = {r["variant"] + str(r["seed"]): os.path.getmtime(os.path.join(run_dir(out, r["variant"], r["seed"]),
                                                                           "result.json")) for r in rows}
    again = run_ablation(spec, out, data=mnist_path)
    assert again == rows
    assert "4 already done" in capsys.readouterr().out
    assert mtimes == {r["variant"] + str(r["seed"]): os.path.getmtime(os.path.join(
        run_dir(out, r["variant"], r["seed"]), "result.json")) for r in rows}

    # A record cut short is passed over with a line saying so, and the trial runs again (its checkpoint went with the
    # finished record, so it trains afresh) and writes a whole record; the other trials are untouched.
    damaged = os.path.join(run_dir(out, "beta", 1), "result.json")
    with open(damaged) as file:
        text = file.read()
    with open(damaged, "w") as file:
        file.write(text[:len(text) // 2])
    third = run_ablation(spec, out, data=mnist_path)
    said = capsys.readouterr().out
    assert "beta seed 1: its result.json is not valid JSON (damaged or cut short); running it again" in said
    assert "3 already done" in said and "static seed 0: its" not in said
    assert third[:3] == rows[:3] and third[3]["key"] == rows[3]["key"] and math.isfinite(third[3]["iw_bound"])
    assert read_record(run_dir(out, "beta", 1), rows[3]["key"])["attempts"] == 2


def test_a_record_that_does_not_count_is_named_with_the_reason(tmp_path):
    folder = tmp_path / "seed_0"
    folder.mkdir()
    assert record_trouble(str(folder), "v@1") is None  # no record: nothing to say
    record = folder / "result.json"
    record.write_text(json.dumps({"key": "v@1", "iw_bound": -90.0}))
    assert record_trouble(str(folder), "v@1") is None and read_record(str(folder), "v@1") is not None
    assert record_trouble(str(folder), "v@2") == "its result.json records another definition ('v@1', not 'v@2')"
    record.write_text('{"key": "v@1", "iw_bou')
    assert record_trouble(str(folder), "v@1") == "its result.json is not valid JSON (damaged or cut short)"
    record.write_text("[1, 2]")
    assert record_trouble(str(folder), "v@1") == "its result.json holds list, not a record"
    for text in ('{"key": "v@1", "iw_bou', "[1, 2]"):  # each is read as missing, so the trial runs again
        record.write_text(text)
        assert read_record(str(folder), "v@1") is None


def test_a_trial_is_evaluated_with_its_own_prior_and_flow(tmp_path, mnist_path):
    """A learned prior's or a flow's trial is scored with that prior's log p(z) and that flow's log q(z|x): its record
    is `evaluate` of `CVAE.load` of its folder (the runner once rebuilt MNIST models without them, and the two-layer
    trial's test KL came out as its z1's KL to N(0, I): 104 nats where the model's own is 9)."""
    from pipeline_vae.data import load_mnist
    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import evaluate
    spec = parse_spec("""\
name: learned
seeds: [0]
budget: {epochs: 1, train_steps_per_epoch: 30, eval_steps_per_epoch: 1}
base: {model: mlp, widths: [32], latent_dim: 2}
eval: {iw_samples: 3, n_images: 40}
variants:
  - name: mixture
    set: {prior: mixture, prior_components: 3}
  - name: flow
    set: {flow: planar, flow_steps: 2}
""", "learned.yaml")
    out = str(tmp_path / "out")
    rows = run_ablation(spec, out, data=mnist_path)
    images = load_mnist(path=mnist_path).x_test[:40]
    for row in rows:
        vae = CVAE.load(run_dir(out, row["variant"], row["seed"]))
        assert vae.prior is not None and (vae.flow is not None) == (row["variant"] == "flow")
        expected = evaluate(vae, images, iw_samples=3, seed=0, show_progress=False)
        for key in ("kl", "elbo_analytic", "iw_bound"):
            assert row[key] == pytest.approx(expected[key], abs=1e-4), (row["variant"], key)


@pytest.mark.slow
def test_a_failing_run_names_the_variant_the_error_and_the_log(tmp_path, mnist_path):
    spec = parse_spec(TINY.replace("seeds: [0, 1]", "seeds: [0]").replace(
        "{op: BetaVAELoss, args: {beta: 0.5}}", "{op: IWAELoss, args: {k: 3}}"), "tiny.yaml")
    out = str(tmp_path / "out")
    with pytest.raises(RunFailed) as info:
        run_ablation(spec, out, data=mnist_path, max_failures=0)
    message = str(info.value)
    assert message.startswith("1 of 2 trials did not finish (beta seed 0: exit code 1: ")
    assert "MultiSampleReparameterizeOp(samples=3)" in message and "beta/seed_0/run.log)" in message
    assert read_record(run_dir(out, "static", 0)) is not None  # the finished trial is kept for the next attempt
    assert read_record(run_dir(out, "beta", 0)) is None


@pytest.mark.parametrize("name", ["losses_latent2", "losses_latent50", "models", "likelihoods", "search_latent50",
                                  "literature"])
def test_the_published_records_still_name_their_specs_definitions(name):
    """Rerunning a published spec into its folder keeps its finished trials: the key of every published record is the
    key today's code computes for that variant (binarization.yaml's records predate an edit of the spec)."""
    from pipeline_vae.ablation.spec import load_spec
    with open(f"docs/ablations/{name}/results.json", encoding="utf-8") as file:
        published = {row["variant"]: row["key"] for row in json.load(file)["runs"]}
    spec = load_spec(f"apphub/ablations/{name}.yaml", check_runs=False)
    assert set(published) <= {v.name for v in spec.variants}  # (a partial table: some variants not yet finished)
    assert {v.name: run_key(spec, v) for v in spec.variants if v.name in published} == published


def test_run_key_changes_only_with_what_the_run_depends_on():
    spec = parse_spec(TINY, "tiny.yaml")
    keys = [run_key(spec, v) for v in spec.variants]
    assert keys[0].startswith("static@") and keys[1].startswith("beta@") and keys[0] != keys[1]
    more_seeds = parse_spec(TINY.replace("seeds: [0, 1]", "seeds: [0, 1, 2]"), "tiny.yaml")
    assert [run_key(more_seeds, v) for v in more_seeds.variants] == keys  # adding seeds keeps finished runs
    edited = parse_spec(TINY.replace("beta: 0.5", "beta: 2"), "tiny.yaml")
    assert [run_key(edited, v) for v in edited.variants] == [keys[0], run_key(edited, edited.variants[1])]
    assert run_key(edited, edited.variants[1]) != keys[1]
    longer = parse_spec(TINY.replace("epochs: 1", "epochs: 2"), "tiny.yaml")
    assert all(run_key(longer, v) not in keys for v in longer.variants)
    # Settings added later (lr_schedule, protocol, prior, ...) leave the keys of records made before them unchanged
    # while at their defaults: the key as the code before them computed it (none of them in the settings) ...
    import hashlib
    before = spec.variants[0].to_json()
    for name in ("lr_schedule", "protocol", "prior", "prior_components", "upper_latent_dim", "flow", "flow_steps",
                 "kl_warmup"):
        before["settings"].pop(name)
    blob = json.dumps({"variant": before, "budget": spec.budget, "eval": spec.eval,
                       "data": spec.data_source().to_json()}, sort_keys=True)
    assert keys[0] == f"static@{hashlib.sha256(blob.encode()).hexdigest()[:10]}"
    # ... and setting it makes another definition
    cosine = parse_spec(TINY.replace("  - name: static\n", "  - name: static\n    set: {lr_schedule: cosine}\n"),
                        "tiny.yaml")
    assert run_key(cosine, cosine.variants[0]) != keys[0] and run_key(cosine, cosine.variants[1]) == keys[1]


@pytest.mark.slow
def test_a_resumed_trial_names_the_code_of_every_attempt(tmp_path, mnist_path):
    """A trial whose earlier attempts ran other code (one from before attempts noted it, one at commit `aaa`) records
    all of them in `train_commits`, and `commit` is the code of the attempt that finished and evaluated it."""
    from pipeline_vae.ablation.runner import trials_of
    from pipeline_vae.ablation.trial import ATTEMPTS_FILE, TRIAL_FILE, run_trial
    spec = parse_spec(TINY.replace("seeds: [0, 1]", "seeds: [0]"), "tiny.yaml")
    trial = trials_of(spec, mnist_path)[0]
    folder = tmp_path / "out" / "runs" / trial.variant / "seed_0"
    folder.mkdir(parents=True)
    (folder / TRIAL_FILE).write_text(json.dumps({"key": trial.key}))  # the same definition: nothing is cleared
    (folder / ATTEMPTS_FILE).write_text(json.dumps({"pid": 1, "resumed_from_epoch": 0}) + "\n" +
                                        json.dumps({"pid": 2, "resumed_from_epoch": 0, "commit": "aaa"}) + "\n")
    record = run_trial(spec, trial, str(tmp_path / "out"), data=mnist_path, say=lambda line: None)
    now = [code_version()] if code_version() else []  # (outside a git checkout: "unknown", named once already)
    assert record["commit"] == code_version() and record["train_commits"] == ["unknown", "aaa"] + now
    assert record["attempts"] == 3 and read_record(str(folder))["train_commits"] == ["unknown", "aaa"] + now


@pytest.mark.slow
def test_a_trial_interrupted_while_evaluating_continues_its_iw_bound(tmp_path, mnist_path):
    """A trial stopped during its IW bound (a session's end) continues the bound from its partial file on the next
    attempt. Here the partial file of the first 5 of 10 images is made by the bound itself, stopped after its first
    call, and its values are shifted by -100 nats: the next attempt's record carries the shift (-50 on the mean), so
    it used them (the retraining is seeded, so the weights, and with them the partial's key, are the same)."""
    from pipeline_vae.ablation.runner import trials_of
    from pipeline_vae.ablation.trial import RECORD_FILE, run_trial
    from pipeline_vae.data import load_mnist
    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import iw_bound
    from pipeline_vae.run_config import iw_progress_file
    from tests.pipeline_vae.test_metrics import _StopAfter
    spec = parse_spec(TINY.replace("seeds: [0, 1]", "seeds: [0]").replace("iw_samples: 2,", "iw_samples: 1000,"),
                      "tiny.yaml")
    trial, out = trials_of(spec, mnist_path)[0], str(tmp_path / "out")
    first = run_trial(spec, trial, out, data=mnist_path, say=lambda line: None)
    folder = trial.folder(out)
    os.remove(os.path.join(folder, RECORD_FILE))  # as if the attempt had stopped before recording
    partial = iw_progress_file(folder, 1000, 0)
    vae = CVAE.load(folder)
    images = load_mnist(path=mnist_path).x_test[:10]
    with pytest.raises(KeyboardInterrupt):  # 1000 samples, 5000 decodes a call: 5 images a call, saved after each
        iw_bound(vae, images, 1000, seed=0, progress=_StopAfter(2), resume_file=partial, save_every=0)
    with np.load(partial) as saved:
        assert int(saved["done"]) == 5
        fields = {name: saved[name] for name in saved.files}
    fields["values"] = fields["values"] - 100.0
    with open(partial, "wb") as file:
        np.savez(file, **fields)
    second = run_trial(spec, trial, out, data=mnist_path, say=lambda line: None)
    assert second["iw_bound"] == pytest.approx(first["iw_bound"] - 50.0, abs=1e-6)
    assert second["elbo_analytic"] == first["elbo_analytic"] and not os.path.exists(partial)
