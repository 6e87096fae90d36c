"""Resume after a kill, NaN stops, one process per folder, refusing to mix runs (pipeline_vae.resume, the CLI)."""
import csv
import json
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ops import AnalyticKLLoss
from pipeline_vae import get_estimator
from pipeline_vae.cli import main
from pipeline_vae.resume import CHECKPOINT_DIR, ExtendableRestoreWizard, last_checkpoint_epoch
from pipeline_vae.run_lock import RunLock
from pipeline_vae.traces import StopOnNaN

TRAIN = ["train", "--train-steps-per-epoch", "30", "--eval-steps-per-epoch", "2", "--log-steps", "10",
         "--batch-size", "50"]


def _eval_rows(save_dir):
    with open(os.path.join(save_dir, "train_log.csv")) as file:
        rows = list(csv.DictReader(file))
    return [(int(r["epoch"]), float(r["elbo"])) for r in rows if r["mode"] == "eval"], rows


def _start_and_kill_in_epoch_2(command, env):
    """Run `command` (a `pipeline-vae train` with --log-steps 10, 30 steps per epoch) and SIGKILL it at step 40,
    after the checkpoint of epoch 1; returns the training loss it printed at step 40."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen_checkpoint = False
    try:
        for line in proc.stdout:
            seen_checkpoint = seen_checkpoint or "RestoreWizard: Saved milestones" in line
            if seen_checkpoint and "FastEstimator-Train: step: 40;" in line:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL and seen_checkpoint
    return float(line.split("loss: ")[1].split(";")[0])


@pytest.mark.slow
def test_sigkill_mid_epoch_then_the_same_command_resumes(tmp_path, subprocess_env):
    save_dir = str(tmp_path / "run")
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")
    command = [exe, *TRAIN, "--epochs", "3", "--save-dir", save_dir]
    _start_and_kill_in_epoch_2(command, subprocess_env)
    assert last_checkpoint_epoch(os.path.join(save_dir, CHECKPOINT_DIR)) == 1
    before, rows_before = _eval_rows(save_dir)
    assert [epoch for epoch, _ in before] == [1]
    epoch1_train = [r for r in rows_before if r["mode"] == "train" and int(r["step"]) <= 30]
    checkpoint = os.path.join(save_dir, CHECKPOINT_DIR)
    (saved, ) = [name for name in ("A", "B") if os.path.isdir(os.path.join(checkpoint, name))]
    # The Python 3.11 fix: the traces' and ops' state is pickled, not whole objects (models, data): ~757 KB without it
    assert os.path.getsize(os.path.join(checkpoint, saved, "objects.pkl")) < 100_000

    second = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "resuming from the checkpoint after epoch 1" in second.stdout
    assert "FastEstimator-Train: step: 1;" not in second.stdout  # continued at step 31, not from scratch
    evals, rows = _eval_rows(save_dir)
    assert [epoch for epoch, _ in evals] == [1, 2, 3]  # epoch 1's eval was re-run after the restore: once in the log
    assert [r for r in rows if r["mode"] == "train" and int(r["step"]) <= 30] == epoch1_train  # kept as logged
    train_steps = [int(r["step"]) for r in rows if r["mode"] == "train" and r["loss"]]  # the logged-loss rows
    assert train_steps == sorted(set(train_steps)) and max(train_steps) == 90  # no duplicated or lost train rows
    best = max(elbo for _, elbo in evals)
    assert f"best: {best:.2f} nats" in second.stdout
    encoder = tf.keras.models.load_model(os.path.join(save_dir, "encoder_best_loss.h5"), compile=False)
    assert all(np.all(np.isfinite(w)) for w in encoder.get_weights())

    # A larger --epochs on the same folder extends the run by exactly the new epochs.
    third = subprocess.run([*command[:-4], "--epochs", "4", "--save-dir", save_dir], env=subprocess_env,
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert [epoch for epoch, _ in _eval_rows(save_dir)[0]] == [1, 2, 3, 4]
    assert last_checkpoint_epoch(os.path.join(save_dir, CHECKPOINT_DIR)) == 4


def _h5_weights(path):
    """The arrays of a Keras weights-only .h5, read with h5py in the file's layer and weight order."""
    import h5py
    with h5py.File(path, "r") as file:
        out = []
        for layer in file.attrs["layer_names"]:
            group = file[layer]
            out += [np.array(group[name]) for name in group.attrs["weight_names"]]
        return out


@pytest.mark.slow
def test_resume_restores_the_checkpoint_arrays_and_the_loss_level(tmp_path, subprocess_env, monkeypatch):
    """Kill a CLI run in epoch 2; resume in this process. Right after the restore, both models' weights and both Adam
    states (step count, first and second moments) equal the arrays in the checkpoint files, read here with h5py and
    pickle; and the resumed training loss continues at the level reached before the kill."""
    save_dir = str(tmp_path / "run")
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")
    killed_loss = _start_and_kill_in_epoch_2([exe, *TRAIN, "--epochs", "2", "--save-dir", save_dir], subprocess_env)
    checkpoint = os.path.join(save_dir, CHECKPOINT_DIR)
    with open(os.path.join(checkpoint, "key.txt")) as file:
        folder = os.path.join(checkpoint, file.read().strip())
    saved = {}
    for name in ("encoder", "decoder"):
        with open(os.path.join(folder, f"{name}_opt.pkl"), "rb") as file:
            saved[name] = (_h5_weights(os.path.join(folder, f"{name}.h5")), pickle.load(file))
    _, rows = _eval_rows(save_dir)
    before = {int(r["step"]): float(r["loss"]) for r in rows if r["mode"] == "train" and r["loss"]}

    restored = {}
    original = ExtendableRestoreWizard.on_begin

    def on_begin(wizard, data):
        original(wizard, data)
        for model in wizard.system.network.models:
            restored[model.model_name] = (model.get_weights(), model.current_optimizer.get_weights())

    monkeypatch.setattr(ExtendableRestoreWizard, "on_begin", on_begin)
    # The same settings as TRAIN (the folder refuses a different configuration), epochs 2; the data as in the CLI.
    from pipeline_vae.data import load_mnist
    est = get_estimator(epochs=2, batch_size=50, train_steps_per_epoch=30, eval_steps_per_epoch=2, log_steps=10,
                        save_dir=save_dir, data=load_mnist(path=subprocess_env["PIPELINE_VAE_DATA"]), resume=True)
    est.fit()
    assert set(restored) == {"encoder", "decoder"}
    for name, (weights, optimizer) in saved.items():
        got_weights, got_optimizer = restored[name]
        assert len(got_weights) == len(weights) and len(got_optimizer) == len(optimizer["weights"]) == 2 * len(
            weights) + 1
        for got, want in zip(got_weights + got_optimizer, weights + optimizer["weights"]):
            np.testing.assert_array_equal(got, want)
        assert int(got_optimizer[0]) == 30  # Adam's step count: the 30 steps of epoch 1
        assert all(np.any(m != 0) for m in got_optimizer[1:])  # real moments, not a fresh optimizer's zeros
    _, rows = _eval_rows(save_dir)
    after = {int(r["step"]): float(r["loss"]) for r in rows if r["mode"] == "train" and r["loss"]}
    # Step 40 of the resumed run against step 40 of the killed one: the same 10 steps from the same state, on other
    # batches. A model that restarted from scratch (or from noise) would be near the untrained loss.
    untrained, resumed = before[1], after[40]
    assert untrained - killed_loss > 150  # the run really trained (about 540 -> 260 nats by step 40)
    assert abs(resumed - killed_loss) < 0.2 * (untrained - killed_loss)


class _InfFromEpoch2(AnalyticKLLoss):
    """The loss becomes -inf from training epoch 2 on (log 0), with finite gradients before."""
    def forward(self, data, state):
        loss = super().forward(data, state)
        if state.get("mode") != "train":
            return loss
        return loss + tf.math.log(tf.cast(state["epoch"] < 2, tf.float32))


@pytest.mark.slow
def test_a_nan_stops_before_eval_and_keeps_the_best_model_and_checkpoint(tmp_path, small_mnist):
    save_dir = str(tmp_path / "run")
    est = get_estimator(epochs=3, batch_size=50, train_steps_per_epoch=4, data=small_mnist, save_dir=save_dir,
                        log_steps=None, ops={"loss": _InfFromEpoch2()}, resume=True)
    est.fit()
    stop = next(t for t in est.traces if isinstance(t, StopOnNaN))
    assert stop.stopped_at == (2, 5, "loss")  # the first step of epoch 2
    evals, _ = _eval_rows(save_dir)
    assert [epoch for epoch, _ in evals] == [1]  # no eval after the stop
    assert last_checkpoint_epoch(os.path.join(save_dir, CHECKPOINT_DIR)) == 1  # the stopped epoch was not saved
    decoder = tf.keras.models.load_model(os.path.join(save_dir, "decoder_best_loss.h5"), compile=False)
    assert all(np.all(np.isfinite(w)) for w in decoder.get_weights())


@pytest.mark.slow
def test_the_cli_names_where_a_diverging_run_stopped(tmp_path, run_cli):
    result = run_cli([*TRAIN, "--epochs", "2", "--lr", "1e30", "--save-dir", str(tmp_path / "run")])
    assert result.returncode == 1
    assert "pipeline-vae: error: training stopped: 'loss' became NaN/Inf at epoch 1, step " in result.stderr
    assert "try a lower --lr" in result.stderr and "Traceback" not in result.stderr


def test_a_second_process_on_the_same_folder_is_refused(tmp_path, mnist_path, capsys):
    save_dir = str(tmp_path / "run")
    with RunLock(save_dir):
        code = main([*TRAIN, "--epochs", "1", "--save-dir", save_dir, "--data", mnist_path])
    assert code == 1
    assert f"{save_dir} is in use by another process (pid {os.getpid()}" in capsys.readouterr().err


@pytest.mark.slow
def test_a_changed_configuration_is_refused_and_fresh_starts_over(tmp_path, run_cli):
    save_dir = tmp_path / "run"
    save_dir.mkdir()
    (save_dir / "cvae_config.json").write_text(json.dumps({"latent_dim": 2, "model": "conv"}))
    (save_dir / "encoder_best_loss.h5").write_text("old model")
    (save_dir / "notes.txt").write_text("mine")
    args = [*TRAIN, "--epochs", "1", "--train-steps-per-epoch", "2", "--latent-dim", "3", "--save-dir",
            str(save_dir)]
    refused = run_cli(args)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"pipeline-vae: error: save_dir {save_dir} holds a different run (latent_dim=2, "
                                      "this run has latent_dim=3); use another --save-dir, or --fresh to start over "
                                      "in it")
    assert (save_dir / "encoder_best_loss.h5").read_text() == "old model"  # nothing touched
    fresh = run_cli([*args, "--fresh"])
    assert fresh.returncode == 0, fresh.stderr
    assert "--fresh: removed encoder_best_loss.h5, cvae_config.json" in fresh.stdout
    assert (save_dir / "notes.txt").read_text() == "mine"  # files the run did not write are left alone
    assert json.loads((save_dir / "cvae_config.json").read_text())["latent_dim"] == 3


@pytest.mark.slow
def test_a_seeded_run_checkpoints_and_resumes(tmp_path, small_mnist):
    """FE's RestoreWizard refuses seeded runs; ablation trials are seeded and must resume after a fault. Seeded with
    resume=True: the first epoch is bit-identical to a seeded run without checkpoints (the checkpoint draws no random
    numbers), and a second start with more epochs continues after epoch 1 (step 4) instead of starting over."""
    from pipeline_vae.builders import release_determinism
    common = dict(batch_size=100, train_steps_per_epoch=2, eval_steps_per_epoch=1, data=small_mnist, log_steps=1,
                  seed=3)
    plain, resumable = str(tmp_path / "plain"), str(tmp_path / "resumable")
    get_estimator(epochs=1, save_dir=plain, **common).fit()
    get_estimator(epochs=1, save_dir=resumable, resume=True, **common).fit()
    assert last_checkpoint_epoch(os.path.join(resumable, CHECKPOINT_DIR)) == 1
    for name in ("encoder_best_loss.h5", "decoder_best_loss.h5"):
        a, b = (tf.keras.models.load_model(os.path.join(d, name), compile=False) for d in (plain, resumable))
        assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    get_estimator(epochs=2, save_dir=resumable, resume=True, **common).fit()
    release_determinism()
    evals, rows = _eval_rows(resumable)
    assert [epoch for epoch, _ in evals] == [1, 2]
    assert [int(r["step"]) for r in rows if r["mode"] == "train" and r["loss"]] == [1, 2, 3, 4]



@pytest.mark.slow
def test_a_nan_is_found_at_the_next_check_and_named_at_its_first_step(tmp_path, small_mnist):
    # No host sync every step: the values are checked every `check_every` steps. The loss is -inf from epoch 2 (global
    # step 5) on; with checks every 3 steps the run stops after step 7 (not at once, not at the epoch's end, step 8),
    # and still names step 5.
    est = get_estimator(epochs=3, batch_size=50, train_steps_per_epoch=4, data=small_mnist,
                        save_dir=str(tmp_path / "run"), log_steps=None, ops={"loss": _InfFromEpoch2()})
    stop = next(t for t in est.traces if isinstance(t, StopOnNaN))
    stop.check_every = 3
    est.fit()
    assert stop.stopped_at == (2, 5, "loss")
    assert est.system.global_step == 7


def test_stop_on_nan_refuses_a_bad_interval():
    with pytest.raises(ValueError, match="check_every must be a positive integer, got 0"):
        StopOnNaN(check_every=0)
