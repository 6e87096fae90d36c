"""A trial's folder holds one definition of the trial: an edited variant starts over, the same one resumes."""
import json
import os

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
