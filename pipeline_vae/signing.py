"""Signed checkpoints: a resume opens only checkpoint files this user's pipeline-vae wrote.

    sign_folder("runs/cvae/checkpoint/A")      # after FE's RestoreWizard wrote it (ExtendableRestoreWizard does this)
    verify_folder("runs/cvae/checkpoint/A")    # before FE reads it: raises CheckpointError, one line, otherwise

FastEstimator's RestoreWizard keeps optimizer and trace state as pickles (`checkpoint/<A|B>/*.pkl`, read with dill),
and unpickling runs code. So every file of a checkpoint is signed with HMAC-SHA256 under a secret key that belongs to
the user (`user_key`: 32 random bytes, created on first use as `~/.config/pipeline-vae/checkpoint.key`, or under
`$XDG_CONFIG_HOME`, mode 0600), and the signatures are kept in the checkpoint (`signature.json`). A checkpoint is
opened only when every file in it matches its signature and nothing was added: one from another user or machine, an
altered or truncated file, or a folder from before signatures is refused in one line that offers `--fresh`.
See docs/threat-model.md for what this protects and what it does not.
"""
import hashlib
import hmac
import json
import os
import secrets
import stat
from typing import Dict

from pipeline_vae.atomic import write_json_atomic

SIGNATURE_FILE = "signature.json"
KEY_NAME = "checkpoint.key"
FRESH = "`pipeline-vae train --fresh` starts the run over"


class CheckpointError(ValueError):
    """A checkpoint that must not be opened: unsigned, altered, damaged or signed with another key."""


def key_path() -> str:
    """Where this user's checkpoint key lives: `$XDG_CONFIG_HOME/pipeline-vae/checkpoint.key` (default
    `~/.config`)."""
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(home, "pipeline-vae", KEY_NAME)


def user_key() -> bytes:
    """This user's secret key, created (mode 0600) on first use.

    Raises:
        PermissionError: If the key file can be read or written by other users, or is not a regular file.
        OSError: If it cannot be created.
    """
    path = key_path()
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32) + "\n")
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(tmp, path)  # fails if another process made one first: then that one is everyone's key
            except FileExistsError:
                pass
        finally:
            os.remove(tmp)
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise PermissionError(f"{path}: the checkpoint key must be a regular file")
    if info.st_mode & 0o077:
        raise PermissionError(f"{path}: the checkpoint key is open to other users (mode {info.st_mode & 0o777:o}); "
                              f"run `chmod 600 {path}`")
    with open(path) as file:
        text = file.read().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise PermissionError(f"{path}: the checkpoint key is damaged; delete it (checkpoints signed with it will "
                              "then be refused, and " + FRESH + ")")
    return key


def _mac(key: bytes, rel: str, path: str) -> str:
    digest = hmac.new(key, rel.encode() + b"\0", hashlib.sha256)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: str) -> Dict[str, str]:
    """Relative path -> path of every file under `folder` except the signature (symbolic links included, as the
    names they are)."""
    found = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            if rel != SIGNATURE_FILE:
                found[rel] = path
    return found


def sign_folder(folder: str) -> str:
    """Sign every file under `folder` (a checkpoint FE just wrote) into `folder/signature.json`. Returns its path."""
    key = user_key()
    macs = {rel: _mac(key, rel, path) for rel, path in _files(folder).items()}
    path = os.path.join(folder, SIGNATURE_FILE)
    write_json_atomic(path, {"algorithm": "hmac-sha256", "files": macs})
    return path


def verify_folder(folder: str) -> None:
    """Check every file under `folder` against its signature before anything reads it.

    Raises:
        CheckpointError: One line naming the file and offering `--fresh`, if the folder has no readable signature,
            a file is missing, added, a link, or does not match (altered, damaged, or signed with another key).
    """
    sig_path = os.path.join(folder, SIGNATURE_FILE)
    why = "was not written by pipeline-vae under this account (another user or machine, or from before checkpoints " \
          "were signed), so its pickles are not opened"
    if not os.path.isfile(sig_path) or os.path.islink(sig_path):
        raise CheckpointError(f"checkpoint {folder} has no signature ({SIGNATURE_FILE}): it {why}; {FRESH}")
    try:
        with open(sig_path, encoding="utf-8") as file:
            macs = json.load(file)["files"]
        if not isinstance(macs, dict) or not all(isinstance(v, str) for v in macs.values()):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"checkpoint signature {sig_path} is unreadable (damaged); {FRESH}") from None
    key = user_key()
    found = _files(folder)
    for rel, path in found.items():
        if rel not in macs:
            raise CheckpointError(f"checkpoint file {path} is not in the checkpoint's signature (added after it was "
                                  f"written); it is not opened; {FRESH}")
        if os.path.islink(path):
            raise CheckpointError(f"checkpoint file {path} is a symbolic link; it is not opened; {FRESH}")
        if not hmac.compare_digest(_mac(key, rel, path), macs[rel]):
            raise CheckpointError(f"checkpoint file {path} does not match its signature: altered, damaged, or written "
                                  f"by pipeline-vae under another account; it is not opened; {FRESH}")
    for rel in macs:
        if rel not in found:
            raise CheckpointError(f"checkpoint file {os.path.join(folder, rel)} is missing; {FRESH}")


def verify_checkpoint(directory: str) -> bool:
    """Verify the checkpoint FE's RestoreWizard would restore from `directory` (the slot `key.txt` names).

    Returns:
        Whether there is a checkpoint to restore (False: no `key.txt`, a fresh start).

    Raises:
        CheckpointError: If `key.txt` is damaged or the slot it names fails `verify_folder`.
    """
    key_file = os.path.join(directory, "key.txt")
    if not os.path.exists(key_file):
        return False
    try:
        with open(key_file, encoding="utf-8") as file:
            slot = file.read()
    except (OSError, ValueError):
        slot = None
    if slot not in ("A", "B"):
        raise CheckpointError(f"checkpoint file {key_file} is damaged (it must say A or B); {FRESH}")
    verify_folder(os.path.join(directory, slot))
    return True
