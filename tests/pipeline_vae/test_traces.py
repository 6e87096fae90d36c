import os

import numpy as np
import pytest
import tensorflow as tf
from fastestimator.trace.trace import Trace
from fastestimator.util.data import Data

from pipeline_vae import build_encoder
from pipeline_vae.traces import ExampleMean, save_full_model


def test_example_mean_weights_batches_by_size():
    trace = ExampleMean(inputs="loss", outputs="elbo", batch_key="x", scale=-1.0)
    trace.on_epoch_begin(Data())
    trace.on_batch_end(Data({"loss": np.float32(1.0), "x": np.zeros((100, 28, 28, 1))}))
    trace.on_batch_end(Data({"loss": np.float32(4.0), "x": np.zeros((50, 28, 28, 1))}))
    out = Data()
    trace.on_epoch_end(out)
    assert out["elbo"] == pytest.approx(-(100 * 1.0 + 50 * 4.0) / 150)  # -2.0; the unweighted mean would be -2.5


def test_example_mean_of_per_example_values_and_reset():
    trace = ExampleMean(inputs="v", outputs="m", scale=1.0)
    for _ in range(2):  # two epochs: the second must not include the first's sums
        trace.on_epoch_begin(Data())
        trace.on_batch_end(Data({"v": np.array([1.0, 2.0, 3.0]), "x": np.zeros((3, 1))}))
        out = Data()
        trace.on_epoch_end(out)
        assert out["m"] == pytest.approx(2.0)


def test_save_full_model_loads_both_ways(tmp_path):
    model = build_encoder(2)
    path = save_full_model(model, str(tmp_path / "enc.h5"))
    x = tf.random.uniform([4, 28, 28, 1])
    full = tf.keras.models.load_model(path, compile=False)
    weights_only = build_encoder(2)
    weights_only.load_weights(path)
    np.testing.assert_array_equal(full(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(weights_only(x).numpy(), model(x).numpy())


def test_a_full_disk_mid_save_keeps_the_old_model(tmp_path, monkeypatch):
    """ENOSPC injected at the write (half the bytes land, then the error, as on a full disk): one DiskFullError line
    naming the file, the old model intact, no temporary file left."""
    import builtins
    import errno

    from pipeline_vae import traces
    from pipeline_vae.atomic import DiskFullError
    path = str(tmp_path / "enc.h5")
    old = build_encoder(2)
    save_full_model(old, path)
    new = build_encoder(2)

    class Full:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(bytes(data)[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(traces, "open", lambda *a, **k: Full(builtins.open(*a, **k)), raising=False)
    with pytest.raises(DiskFullError) as err:
        save_full_model(new, path)
    assert str(err.value) == (f"no space left on the device to write {path}; the previous file is intact. Free some "
                              "space and run the same command again")
    x = tf.random.uniform([2, 28, 28, 1])
    np.testing.assert_array_equal(tf.keras.models.load_model(path, compile=False)(x).numpy(), old(x).numpy())
    assert os.listdir(tmp_path) == ["enc.h5"]  # the temporary file is gone


class _LossAtEveryStep(Trace):
    """An observer of FE's own per-step loss: every training step's batch loss, read from the batch."""
    def __init__(self):
        super().__init__(inputs="loss", mode="train")
        self.seen = {}

    def on_batch_end(self, data):
        self.seen[self.system.global_step] = float(data["loss"])


@pytest.mark.slow
def test_the_log_holds_each_epochs_last_step_beside_the_log_steps(mnist, tmp_path):
    """7 steps an epoch, log_steps 3: FE logs steps 1, 3, 6 | 9, 12; the log also holds each epoch's last step (7, 14),
    with the loss FE computed at that step, so the curve reaches the end of training."""
    from pipeline_vae import get_estimator
    from pipeline_vae.train_log import read_log
    observer = _LossAtEveryStep()
    get_estimator(epochs=2, batch_size=50, latent_dim=2, train_steps_per_epoch=7, eval_steps_per_epoch=2, seed=3,
                  save_dir=str(tmp_path), data=mnist, log_steps=3, traces=[observer]).fit()
    rows = read_log(os.path.join(tmp_path, "train_log.csv"))["loss"]
    assert [(step, epoch) for step, epoch, _ in rows] == [(1, 1), (3, 1), (6, 1), (7, 1), (9, 2), (12, 2), (14, 2)]
    for step, _, value in rows:
        assert value == pytest.approx(observer.seen[step], rel=1e-5)
