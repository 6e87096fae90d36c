"""GPU-ready switches, checked for correctness on the CPU: mixed precision and XLA give the float32 run's losses within
tolerance, and their files load. (Their speed is a GPU question: docs/benchmarks.md.)"""
import json

import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae import get_estimator
from pipeline_vae.inference import CVAE

BUDGET = dict(epochs=1, batch_size=50, train_steps_per_epoch=5, log_steps=1, seed=0)


def _losses(summary):
    losses = summary.history["train"]["loss"]
    return np.array([float(losses[step]) for step in sorted(losses)])


@pytest.mark.slow
def test_mixed_precision_trains_like_float32_and_its_files_load(small_mnist, tmp_path):
    """Dynamic loss scaling starts at 2^15: with a loss of ~540 nats the first float16 gradients overflow and those
    steps are skipped while the scale halves (Keras' LossScaleOptimizer); after that it trains as float32 does."""
    budget = dict(BUDGET, epochs=6)  # 30 steps
    reference = _losses(get_estimator(data=small_mnist, save_dir=str(tmp_path / "f32"), **budget).fit("f32"))
    est = get_estimator(data=small_mnist, save_dir=str(tmp_path / "mixed"), mixed_precision=True, **budget)
    encoder = est.system.network.models[0]
    assert encoder.layers[1].compute_dtype == "float16" and encoder.output.dtype == tf.float32
    mixed = _losses(est.fit("mixed"))
    assert len(mixed) == 30 and np.all(np.isfinite(mixed))
    assert mixed[0] == pytest.approx(reference[0], rel=1e-3)  # the same model before any update
    skipped = int(np.argmax(mixed[1:] < mixed[0] - 1.0))  # steps until the first real update
    assert 0 < skipped <= 15, mixed
    # then it learns like float32: after the same number of real updates the loss is in the same place (loosely:
    # the batches differ, skipped steps still consume theirs; measured 374 against float32's 414, from 544)
    updates = 29 - skipped
    assert mixed[0] - mixed[-1] > 100 and mixed[-1] == pytest.approx(reference[updates], rel=0.15), (mixed, reference)
    vae = CVAE.load(str(tmp_path / "mixed"))
    assert vae.generate(3, seed=0).dtype == np.float32 and vae.encode(small_mnist.x_test[:4])[0].shape == (4, 2)
    assert json.load(open(tmp_path / "mixed" / "cvae_config.json"))["mixed_precision"] is True
    with pytest.raises(ValueError, match="holds a different run \\(mixed_precision=True, this run has "
                       "mixed_precision=False\\)"):
        get_estimator(data=small_mnist, save_dir=str(tmp_path / "mixed"), **BUDGET)
    plain = get_estimator(data=small_mnist, save_dir=str(tmp_path / "after"), **BUDGET)
    assert plain.system.network.models[0].layers[0].compute_dtype == "float32"  # the policy does not leak


@pytest.mark.slow
def test_xla_trains_like_the_plain_graph_and_is_switched_off_again(small_mnist, tmp_path):
    reference = _losses(get_estimator(data=small_mnist, save_dir=str(tmp_path / "plain"), **BUDGET).fit("plain"))
    est = get_estimator(data=small_mnist, save_dir=str(tmp_path / "xla"), jit=True, **BUDGET)
    assert tf.config.optimizer.get_jit() == "autoclustering"
    np.testing.assert_allclose(_losses(est.fit("xla")), reference, rtol=1e-4)
    assert json.load(open(tmp_path / "xla" / "cvae_config.json"))["jit"] is True
    get_estimator(data=small_mnist, save_dir=str(tmp_path / "again"), **BUDGET)
    assert tf.config.optimizer.get_jit() == ""
