"""Checkpoints are opened only when this user's pipeline-vae signed them (HMAC-SHA256 with a per-user key)."""
import hashlib
import hmac
import json
import os
import pickle
import stat

import pytest

from pipeline_vae.signing import (SIGNATURE_FILE, CheckpointError, key_path, sign_folder, user_key, verify_checkpoint,
                                  verify_folder)

TRAIN = ["train", "--epochs", "1", "--batch-size", "50", "--train-steps-per-epoch", "2", "--eval-steps-per-epoch",
         "1", "--log-steps", "0"]


@pytest.fixture
def own_key(tmp_path, monkeypatch):
    """A fresh config folder, so the key is created by the code under test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "pipeline-vae" / "checkpoint.key"


@pytest.fixture
def slot(tmp_path, own_key):
    folder = tmp_path / "checkpoint" / "A"
    (folder / "sub").mkdir(parents=True)
    (folder / "objects.pkl").write_bytes(b"\x80\x04K\x01.")
    (folder / "system.json").write_text('{"epoch_idx": 1}')
    (folder / "sub" / "model.h5").write_bytes(bytes(range(256)) * 10)
    sign_folder(str(folder))
    return folder


def test_the_key_is_created_once_private_and_reused(own_key):
    assert not own_key.exists()
    key = user_key()
    assert key_path() == str(own_key) and len(key) == 32
    assert stat.S_IMODE(os.stat(own_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(own_key.parent).st_mode) == 0o700
    assert user_key() == key == bytes.fromhex(own_key.read_text().strip())


def test_a_key_open_to_others_is_refused(own_key):
    user_key()
    os.chmod(own_key, 0o644)
    with pytest.raises(PermissionError, match=r"checkpoint.key: the checkpoint key is open to other users \(mode 644\); "
                       r"run `chmod 600 "):
        user_key()


def test_the_signature_is_hmac_sha256_of_path_and_content(slot, own_key):
    """Recomputed here from the documented scheme: HMAC-SHA256(key, relative path + NUL + bytes), every file."""
    key = bytes.fromhex(own_key.read_text().strip())
    signed = json.loads((slot / SIGNATURE_FILE).read_text())["files"]
    expected = {}
    for rel in ("objects.pkl", "system.json", "sub/model.h5"):
        expected[rel] = hmac.new(key, rel.encode() + b"\0" + (slot / rel).read_bytes(), hashlib.sha256).hexdigest()
    assert signed == expected
    verify_folder(str(slot))  # and it verifies


@pytest.mark.parametrize("change, message", [
    (lambda f: (f / "objects.pkl").write_bytes(b"\x80\x04K\x02."), "objects.pkl does not match its signature"),
    (lambda f: (f / "sub" / "model.h5").write_bytes((f / "sub" / "model.h5").read_bytes()[:100]),
     "model.h5 does not match its signature"),
    (lambda f: (f / "extra.pkl").write_bytes(b"x"), "extra.pkl is not in the checkpoint's signature"),
    (lambda f: os.remove(f / "system.json"), "system.json is missing"),
    (lambda f: os.remove(f / SIGNATURE_FILE), "has no signature"),
    (lambda f: (f / SIGNATURE_FILE).write_text("{"), "signature .* is unreadable"),
    (lambda f: os.rename(f / "objects.pkl", f / "sub" / "objects.pkl") or os.rename(f / "sub" / "model.h5",
                                                                                    f / "objects.pkl"),
     "objects.pkl does not match its signature"),
])
def test_any_change_is_refused_in_one_line_offering_fresh(slot, change, message):
    change(slot)
    with pytest.raises(CheckpointError, match=message) as err:
        verify_folder(str(slot))
    assert "\n" not in str(err.value) and str(err.value).endswith("`pipeline-vae train --fresh` starts the run over")


def test_another_users_key_is_refused(slot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "someone-else"))
    with pytest.raises(CheckpointError, match="objects.pkl does not match its signature: altered, damaged, or written "
                       "by pipeline-vae under another account"):
        verify_folder(str(slot))


def test_key_txt_must_name_a_slot(slot):
    directory = slot.parent
    assert verify_checkpoint(str(directory)) is False  # no key.txt: nothing to restore
    (directory / "key.txt").write_text("A")
    assert verify_checkpoint(str(directory)) is True
    (directory / "key.txt").write_text("../../etc")
    with pytest.raises(CheckpointError, match=r"key.txt is damaged \(it must say A or B\)"):
        verify_checkpoint(str(directory))


class Planted:
    """A pickle that creates a file when it is loaded (what an attacker would plant in a shared run folder)."""
    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def test_a_planted_checkpoint_pickle_is_refused_and_never_runs(tmp_path, run_cli):
    """Train (a checkpoint is written and signed), plant a pickle in it, rerun: one line, exit 2, nothing unpickled;
    --fresh then starts over and resumes normally afterwards."""
    save_dir, sentinel = tmp_path / "run", tmp_path / "SENTINEL"
    first = run_cli([*TRAIN, "--save-dir", str(save_dir)])
    assert first.returncode == 0, first.stderr
    slot = save_dir / "checkpoint" / (save_dir / "checkpoint" / "key.txt").read_text()
    pickles = sorted(slot.glob("*.pkl"))
    assert pickles, os.listdir(slot)
    pickles[0].write_bytes(pickle.dumps(Planted(str(sentinel))))
    refused = run_cli([*TRAIN, "--epochs", "2", "--save-dir", str(save_dir)])
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"pipeline-vae: error: checkpoint file {pickles[0]} does not match its signature: altered, damaged, or "
        "written by pipeline-vae under another account; it is not opened; `pipeline-vae train --fresh` starts the "
        "run over")
    assert "Traceback" not in refused.stderr and not sentinel.exists()
    fresh = run_cli([*TRAIN, "--save-dir", str(save_dir), "--fresh"])
    assert fresh.returncode == 0, fresh.stderr
    resumed = run_cli([*TRAIN, "--epochs", "2", "--save-dir", str(save_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint after epoch 1" in resumed.stdout
    assert not sentinel.exists()


@pytest.mark.slow
def test_get_estimator_refuses_a_planted_checkpoint_too(tmp_path, small_mnist):
    """Every entrance (scripts, ablation trials) goes through ExtendableRestoreWizard, which verifies before FE reads."""
    from pipeline_vae import get_estimator
    save_dir, sentinel = tmp_path / "run", tmp_path / "SENTINEL"
    common = dict(batch_size=100, train_steps_per_epoch=2, eval_steps_per_epoch=1, data=small_mnist, log_steps=None,
                  save_dir=str(save_dir), resume=True)
    get_estimator(epochs=1, **common).fit()
    slot = save_dir / "checkpoint" / (save_dir / "checkpoint" / "key.txt").read_text()
    target = sorted(slot.glob("*.pkl"))[0]
    target.write_bytes(pickle.dumps(Planted(str(sentinel))))
    with pytest.raises(CheckpointError, match=f"checkpoint file {target} does not match its signature"):
        get_estimator(epochs=2, **common).fit()
    assert not sentinel.exists()
