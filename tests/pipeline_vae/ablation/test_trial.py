"""A trial's folder holds one definition of the trial: an edited variant starts over, the same one resumes."""
import json
import os

import pytest

from pipeline_vae.ablation.trial import RUN_LOG, TRIAL_FILE, Trial, _prepare
from pipeline_vae.run_lock import LOCK_FILE


def _folder(tmp_path, key):
    folder = tmp_path / "runs" / "v" / "seed_0"
    (folder / "checkpoint" / "A").mkdir(parents=True)
    (folder / "checkpoint" / "A" / "objects.pkl").write_bytes(b"old")
    (folder / "encoder_best_loss.h5").write_bytes(b"old model")
    (folder / RUN_LOG).write_text("old lines\n")
    (folder / LOCK_FILE).write_text("123")
    (folder / TRIAL_FILE).write_text(json.dumps({"key": key}))
    return folder


def test_an_edited_variant_drops_the_old_checkpoint_and_models(tmp_path):
    folder = _folder(tmp_path, "old-key")
    _prepare(str(folder), Trial("v", 0, "new-key"))
    assert sorted(os.listdir(folder)) == sorted([RUN_LOG, LOCK_FILE, TRIAL_FILE])
    assert (folder / RUN_LOG).read_text() == "" and (folder / LOCK_FILE).read_text() == "123"
    assert json.loads((folder / TRIAL_FILE).read_text())["key"] == "new-key"


def test_the_same_definition_keeps_its_checkpoint(tmp_path):
    folder = _folder(tmp_path, "same")
    _prepare(str(folder), Trial("v", 0, "same"))
    assert (folder / "checkpoint" / "A" / "objects.pkl").read_bytes() == b"old"
    assert (folder / "encoder_best_loss.h5").read_bytes() == b"old model"


def test_a_trials_training_time_counts_every_attempts_epochs(tmp_path):
    """`train_epoch_seconds`: FE's per-epoch training times in the run's train_log.csv, every epoch once (an epoch
    logged again by a later attempt counts as that attempt's), validation rows and per-step rows left out."""
    from pipeline_vae.ablation.trial import Trial, epoch_seconds, trial_row
    folder = tmp_path / "runs" / "v" / "seed_0"
    folder.mkdir(parents=True)
    assert epoch_seconds(str(folder)) is None  # no log
    header = "mode,step,epoch,loss,encoder_lr,decoder_lr,steps/sec,epoch_time(sec),max_elbo,elbo,since_best_elbo\n"
    rows = ["train,100,1,90.0,,,30.0,,,,",             # a per-step line: no epoch time
            "train,500,1,,,,,12.5,,,", "eval,500,1,88.0,,,,,-88.0,-88.0,0",
            "train,1000,2,,,,,13.0,,,",                   # epoch 2, then killed; the next attempt retrains it:
            "train,1000,2,,,,,20.25,,,", "train,1500,3,,,,,11.0,,,"]
    (folder / "train_log.csv").write_text(header + "\n".join(rows) + "\n")
    assert epoch_seconds(str(folder)) == pytest.approx(12.5 + 20.25 + 11.0, abs=0.05)  # (to 0.1 s)
    trial = Trial("v", 0, "v@0")
    assert trial_row(trial, {"iw_bound": -1.0}, str(tmp_path))["train_epoch_seconds"] == epoch_seconds(str(folder))
    assert trial_row(trial, {"train_epoch_seconds": 7.0}, str(tmp_path))["train_epoch_seconds"] == 7.0  # recorded
    (folder / "train_log.csv").write_text("not,a\nlog")
    assert epoch_seconds(str(folder)) is None

