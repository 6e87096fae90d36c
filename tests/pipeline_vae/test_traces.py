import os

import numpy as np
import pytest
import tensorflow as tf
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


def test_a_crash_mid_save_keeps_the_old_model(tmp_path, monkeypatch):
    path = str(tmp_path / "enc.h5")
    old = build_encoder(2)
    save_full_model(old, path)
    new = build_encoder(2)

    def crash(filepath, *args, **kwargs):  # write half a file, then die as a kill or full disk would
        with open(filepath, "wb") as file:
            file.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        raise OSError("No space left on device")

    monkeypatch.setattr(new, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        save_full_model(new, path)
    x = tf.random.uniform([2, 28, 28, 1])
    np.testing.assert_array_equal(tf.keras.models.load_model(path, compile=False)(x).numpy(), old(x).numpy())
    assert os.listdir(tmp_path) == ["enc.h5"]  # the temporary file is gone
