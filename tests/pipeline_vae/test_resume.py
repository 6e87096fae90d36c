"""Resume after a kill, NaN stops, one process per folder, refusing to mix runs (pipeline_vae.resume, the CLI)."""
import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ops import AnalyticKLLoss
from pipeline_vae import get_estimator
from pipeline_vae.cli import main
from pipeline_vae.resume import CHECKPOINT_DIR, last_checkpoint_epoch
from pipeline_vae.run_lock import RunLock
from pipeline_vae.traces import StopOnNaN

TRAIN = ["train", "--train-steps-per-epoch", "30", "--eval-steps-per-epoch", "2", "--log-steps", "10",
         "--batch-size", "50"]


def _eval_rows(save_dir):
    with open(os.path.join(save_dir, "train_log.csv")) as file:
        rows = list(csv.DictReader(file))
    return [(int(r["epoch"]), float(r["elbo"])) for r in rows if r["mode"] == "eval"], rows


@pytest.mark.slow
def test_sigkill_mid_epoch_then_the_same_command_resumes(tmp_path, subprocess_env):
    save_dir = str(tmp_path / "run")
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")
    command = [exe, *TRAIN, "--epochs", "3", "--save-dir", save_dir]
    first = subprocess.Popen(command, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen_checkpoint = False
    try:
        for line in first.stdout:  # kill inside epoch 2, after the checkpoint of epoch 1
            seen_checkpoint = seen_checkpoint or "RestoreWizard: Saved milestones" in line
            if seen_checkpoint and "FastEstimator-Train: step: 40;" in line:
                first.send_signal(signal.SIGKILL)
                break
    finally:
        first.wait(timeout=120)
    assert first.returncode == -signal.SIGKILL and seen_checkpoint
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


class _InfFromEpoch2(AnalyticKLLoss):
    """The loss becomes -inf from training epoch 2 on (log 0), with finite gradients before."""
    def forward(self, data, state):
        loss = super().forward(data, state)
        if state.get("mode") != "train":
            return loss
        return loss + tf.math.log(tf.cast(state["epoch"] < 2, tf.float32))


@pytest.mark.slow
def test_a_nan_stops_at_once_and_keeps_the_best_model_and_checkpoint(tmp_path, small_mnist):
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


def test_seed_and_resume_cannot_be_combined(small_mnist):
    with pytest.raises(ValueError, match="resume and seed cannot be combined"):
        get_estimator(seed=1, resume=True, data=small_mnist)
