"""Resumable training: FastEstimator 1.7's RestoreWizard, made to work on Python 3.11 and to extend runs.

`get_estimator(..., resume=True)` (the CLI's default for unseeded runs) adds `ExtendableRestoreWizard`, which saves
both models, both optimizers, the epoch/step counters and the traces' state (best metric so far, ...) to
`save_dir/checkpoint/` at the end of every training epoch; the same command run again continues from there.

What it adds to FE 1.7, here and nowhere else:

1. **Python 3.11 pickling** (`patch_getstate`). FE's `@traceable` gives traces, ops, datasets and slicers a
   `__getstate__` that keeps only their simple state, but only when the class has none; Python 3.11 added
   `object.__getstate__`, so FE's is never installed and RestoreWizard pickles whole objects (models, the System, the
   data), and the second start crashes (`TypeError: 'Sequential' object does not support item assignment`). The
   patch installs FE's own function where only `object`'s is found. Idempotent; a no-op on Python < 3.11.
2. **Extending a run** (`ExtendableRestoreWizard`). RestoreWizard restores `total_epochs` from the checkpoint, so a
   larger `--epochs` on the second start would not train further; the new value is kept instead.
3. **tf.data pipelines** (`ExtendableRestoreWizard.on_epoch_end`). FE pickles each dataset's state into the
   checkpoint, which fails for a `tf.data.Dataset` (the project's default loader); those hold no state worth restoring
   (the next epoch reshuffles anyway), so they are left out.

4. **Seeded runs** (`ExtendableRestoreWizard.on_begin`). RestoreWizard refuses to run under `fe.enable_deterministic`
   (a restored run cannot put every random generator back where it was). Here a seeded run may checkpoint and resume:
   an uninterrupted seeded run stays bit-identical to another; a resumed one continues from the checkpoint's weights,
   optimizer and counters, with fresh random draws after it (so its later epochs differ from an uninterrupted run's,
   as two unseeded runs do). Ablation trials rely on this to resume after a fault; `pipeline-vae train --seed` does
   not checkpoint (a rerun restarts and reproduces). See docs/what-happens-if.md.

5. **Signed checkpoints** (`_write_key`, `on_begin`). Each checkpoint slot is signed with the user's key before
   `key.txt` points at it, and verified before FE reads it (`pipeline_vae.signing`): FE's pickles are never opened
   from a checkpoint this user's pipeline-vae did not write.
"""
import json
import os
import shutil
from typing import Optional

import fastestimator as fe
import numpy as np
import tensorflow as tf
from fastestimator.trace.io.restore_wizard import RestoreWizard
from fastestimator.util.data import Data
from fastestimator.util.traceability_util import traceable

from pipeline_vae.atomic import DiskFullError, is_disk_full
from pipeline_vae.run_config import RunConfig, stamp_checkpoint
from pipeline_vae.signing import sign_folder, verify_checkpoint

#: Where the checkpoints go inside a run's save_dir (RestoreWizard's A/, B/ and key.txt).
CHECKPOINT_DIR = "checkpoint"


def patch_getstate() -> None:
    """Install FE's filtered `__getstate__` on Trace, Op, FEDataset and Slicer where Python 3.11's default shadows it."""
    import fastestimator.util.traceability_util as traceability
    from fastestimator.dataset.dataset import FEDataset
    from fastestimator.op.op import Op
    from fastestimator.slicer.slicer import Slicer
    from fastestimator.trace.trace import Trace
    for cls in (Trace, Op, FEDataset, Slicer):
        if getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None):
            cls.__getstate__ = traceability.__getstate__


@traceable()
class ExtendableRestoreWizard(RestoreWizard):
    """FE's RestoreWizard that keeps this run's `epochs`, also works in seeded runs, and never checkpoints a run
    stopped by a NaN.

    Args:
        directory: Where the checkpoints go.
        frequency: Save every this many epochs.
        config: The run's configuration, whose identity is recorded beside every checkpoint
            (`run_config.stamp_checkpoint`) so a resume under an edited configuration is refused.
    """
    def __init__(self, directory: str, frequency: int = 1, config: Optional[RunConfig] = None) -> None:
        patch_getstate()
        self.config = config
        super().__init__(directory=directory, frequency=frequency)

    def on_begin(self, data: Data) -> None:
        if self.should_restore():
            verify_checkpoint(self.directory)  # before FE unpickles anything (pipeline_vae.signing)
        total = self.system.total_epochs
        seed, fe.fe_deterministic_seed = fe.fe_deterministic_seed, None  # FE refuses seeded runs; see fix 4 above
        try:
            super().on_begin(data)
        finally:
            fe.fe_deterministic_seed = seed
        self.system.total_epochs = total

    def on_epoch_end(self, data: Data) -> None:
        if self.system.stop_training:  # a NaN stop in this training epoch: keep the last good checkpoint
            return
        # FE pickles every dataset's state; a tf.data pipeline has none to restore (and cannot be pickled), so it is
        # left out of the checkpoint.
        datasets = self.system.pipeline.data
        self.system.pipeline.data = {mode: {ds_id: ds for ds_id, ds in by_id.items()
                                            if not isinstance(ds, tf.data.Dataset)}
                                     for mode, by_id in datasets.items()}
        slot = self.dirs[self.dir_idx]
        check_room(slot, self._expected_size())  # before h5py writes: on a full disk it can crash the process
        try:
            super().on_epoch_end(data)
        except OSError as err:
            if not is_disk_full(err):
                raise
            shutil.rmtree(slot, ignore_errors=True)  # key.txt still names the last complete checkpoint
            raise DiskFullError(slot) from err
        finally:
            self.system.pipeline.data = datasets
        if self.config is not None and os.path.isdir(self.directory):
            stamp_checkpoint(self.directory, self.config)


    def _expected_size(self) -> int:
        """Bytes the next checkpoint will take: the last one's size, or (before the first) four float32 copies of
        every model's weights (weights, two Adam moments, slack), plus 1 MB for pickles and JSON."""
        other = self.dirs[int(not self.dir_idx)]
        if os.path.isdir(other):
            return folder_size(other) + (1 << 20)
        weights = sum(int(np.prod(w.shape)) for model in self.system.network.models for w in model.weights)
        return 4 * 4 * weights + (1 << 20)

    def _write_key(self) -> None:
        sign_folder(self.dirs[self.dir_idx])  # the slot FE just saved, before key.txt points at it
        super()._write_key()


def folder_size(folder: str) -> int:
    """Bytes of the files under `folder`."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def check_room(folder: str, needed: int) -> None:
    """Raise DiskFullError for `folder` if its file system has less than `needed` bytes free.

    FE writes a checkpoint's weights with h5py, which on a full disk can fail with a crash of the process rather than
    an error (seen: a segfault while saving with about 120 KB left), so the room is checked first.
    """
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    if shutil.disk_usage(parent).free < needed:
        raise DiskFullError(folder)


def last_checkpoint_epoch(directory: str) -> int:
    """The epoch after which the newest complete checkpoint in `directory` was taken (0 if there is none)."""
    try:
        with open(os.path.join(directory, "key.txt")) as file:
            key = file.readline().strip()
        with open(os.path.join(directory, key, "system.json")) as file:
            return int(json.load(file).get("epoch_idx", 0))
    except (OSError, ValueError):
        return 0
