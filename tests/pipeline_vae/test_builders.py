import json
import os

import fastestimator as fe
import numpy as np
import pytest
import tensorflow as tf
from fastestimator.trace.adapt import EarlyStopping, ReduceLROnPlateau
from fastestimator.util.data import Data

from ops import CVAELoss, ReparameterizeOp
from pipeline_vae import get_estimator, get_pipeline
from pipeline_vae.builders import CONFIG_FILE
from pipeline_vae.models import build_decoder, build_encoder


def binarized(images):
    return (images[..., None] >= 128).astype(np.float32)


@pytest.fixture(scope="module")
def trained(small_mnist, tmp_path_factory):
    """One epoch on 250 real training digits (3 steps: 100, 100, 50), evaluated on 130 test digits (100, 30)."""
    save_dir = str(tmp_path_factory.mktemp("run"))
    est = get_estimator(epochs=1, batch_size=100, latent_dim=2, save_dir=save_dir, data=small_mnist, log_steps=0)
    summary = est.fit(summary="test")
    return est, summary, save_dir


@pytest.mark.slow
def test_fit_writes_both_models_and_the_config(trained):
    _, _, save_dir = trained
    assert sorted(os.listdir(save_dir)) == [CONFIG_FILE, "decoder_best_loss.h5", "encoder_best_loss.h5", "samples",
                                           "samples.gif", "train_log.csv"]
    config = json.load(open(os.path.join(save_dir, CONFIG_FILE)))
    assert config["latent_dim"] == 2 and config["slots"]["loss"] == ["AnalyticKLLoss"]


@pytest.mark.slow
def test_saved_models_reload_both_ways_with_identical_outputs(trained, small_mnist):
    est, _, save_dir = trained
    in_memory = {m.model_name: m for m in est.network.models}
    x = binarized(small_mnist.x_test[:16])
    z = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    for name, builder, inputs in (("encoder", build_encoder, x), ("decoder", build_decoder, z)):
        path = os.path.join(save_dir, f"{name}_best_loss.h5")
        expected = in_memory[name](inputs, training=False).numpy()
        full = tf.keras.models.load_model(path, compile=False)
        via_fe = fe.build(model_fn=lambda: builder(2), optimizer_fn="adam", weights_path=path)
        np.testing.assert_array_equal(full(inputs).numpy(), expected)
        np.testing.assert_array_equal(via_fe(inputs).numpy(), expected)


@pytest.mark.slow
def test_elbo_is_the_example_weighted_negative_loss(trained, small_mnist):
    """Recompute the test ELBO of the saved models by hand over all 130 test digits; it is a 1-sample MC estimate, so
    compare with a tolerance of a few standard errors of the recomputed value."""
    _, summary, save_dir = trained
    elbo_logged = float(summary.history["eval"]["elbo"][max(summary.history["eval"]["elbo"])])
    enc = tf.keras.models.load_model(os.path.join(save_dir, "encoder_best_loss.h5"), compile=False)
    dec = tf.keras.models.load_model(os.path.join(save_dir, "decoder_best_loss.h5"), compile=False)
    from ops import AnalyticKLLoss, SplitOp
    x = tf.constant(binarized(small_mnist.x_test))
    draws = []
    for seed in range(20):
        tf.random.set_seed(seed)
        mean, logvar = SplitOp().forward(enc(x), state={})
        z = ReparameterizeOp().forward([mean, logvar], state={})
        draws.append(-AnalyticKLLoss(average_loss=False).forward([x, dec(z), mean, logvar, z], state={}).numpy().mean())
    assert abs(elbo_logged - np.mean(draws)) < 5 * np.std(draws) + 1e-3
    assert -600 < elbo_logged < -100  # nats per digit, a barely-trained model


@pytest.mark.slow
def test_the_seeds_inference_code_runs_unchanged(trained, small_mnist):
    _, _, model_dir = trained
    # --- the FastEstimator CVAE tutorial's inference code, verbatim in substance ---
    encoder_model = tf.keras.models.load_model(os.path.join(model_dir, 'encoder_best_loss.h5'), compile=False)
    decoder_model = tf.keras.models.load_model(os.path.join(model_dir, 'decoder_best_loss.h5'), compile=False)
    images = np.float32(small_mnist.x_test[:8]) / 255.0
    images = np.expand_dims(np.where(images > .5, 1.0, 0.0).astype(np.float32), -1)
    mean, logvar = tf.split(encoder_model(images), num_or_size_splits=2, axis=1)
    eps = tf.random.normal(shape=mean.shape)
    z = eps * tf.exp(logvar * .5) + mean
    x_logit = decoder_model(z)
    assert x_logit.shape == (8, 28, 28, 1)
    assert np.all(np.isfinite(x_logit.numpy()))


def test_bad_arguments_fail_before_training(small_mnist, tmp_path):
    cases = [(dict(epochs=0), "epochs must be a positive integer, got 0"),
             (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
             (dict(train_steps_per_epoch=-1), "train_steps_per_epoch must be a positive integer or None"),
             (dict(latent_dim=0), "latent_dim must be a positive integer, got 0"),
             (dict(seed=-3), "seed must be a non-negative integer or None"),
             (dict(ops={"decoder": None}), r"unknown slot name\(s\) 'decoder'"),
             (dict(likelihood="poisson"), "likelihood must be None or one of bernoulli, gaussian, discretized_logistic"),
             (dict(binarize_threshold=1.5), "binarize_threshold must be None or a number between 0 and 1, got 1.5"),
             (dict(image_size=(8, 8)), "image_size, channels, test_fraction, split_seed and validation_fraction go with data given by name "
              "or path; a MNIST carries its own"),
             (dict(ops={"loss": CVAELoss(likelihood="gaussian")}),
              "slot 'loss' \\(CVAELoss\\) uses the gaussian likelihood but the run's is bernoulli")]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            get_estimator(save_dir=str(tmp_path / "run"), data=small_mnist, **kwargs)
    assert not (tmp_path / "run").exists()  # nothing was written before the arguments passed


def test_bad_images_to_the_pipeline_builder(small_mnist):
    bad = type(small_mnist)(small_mnist.x_train.astype(np.float32), small_mnist.y_train, small_mnist.x_test,
                            small_mnist.y_test)
    with pytest.raises(ValueError, match=r"x_train: float values must be in 0..1, got 0..255 \(pass uint8"):
        get_pipeline(data=bad)
    nan = bad.x_train.copy() / 255
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="x_train: contains NaN or Inf"):
        get_pipeline(data=type(small_mnist)(nan, small_mnist.y_train, small_mnist.x_test, small_mnist.y_test))


def test_pipeline_batches_raw_uint8(small_mnist):
    batch = get_pipeline(batch_size=10, data=small_mnist).get_results(mode="eval")  # tf.data: TF tensors
    assert tuple(batch["x"].shape) == (10, 28, 28, 1) and batch["x"].dtype.name == "uint8"
    np.testing.assert_array_equal(batch["x"].numpy()[..., 0], small_mnist.x_test[:10])  # eval is not shuffled
    fe_batch = get_pipeline(batch_size=10, data=small_mnist, loader="fe").get_results(mode="eval")  # FE's loader
    assert str(fe_batch["x"].dtype) == "torch.uint8"
    np.testing.assert_array_equal(fe_batch["x"].numpy()[..., 0], small_mnist.x_test[:10])
    with pytest.raises(ValueError, match="ops \\(NumpyOps\\) and num_process need loader='fe'"):
        get_pipeline(batch_size=10, data=small_mnist, loader="tf.data", num_process=2)


def test_early_stop_and_lr_plateau_follow_the_test_elbo(small_mnist, tmp_path):
    """The optional FE traces watch `elbo` and treat higher as better."""
    est = get_estimator(epochs=10, learning_rate=1e-3, early_stop=2, lr_plateau=1, save_dir=str(tmp_path),
                        data=small_mnist)
    (stopper, ) = [t for t in est.traces if isinstance(t, EarlyStopping)]
    plateaus = [t for t in est.traces if isinstance(t, ReduceLROnPlateau)]
    assert sorted(t.model.model_name for t in plateaus) == ["decoder", "encoder"]
    stopper.system = est.system
    stopper.on_begin(Data())
    for elbo in (-200.0, -190.0, -195.0, -191.0):  # improves, improves, worse, still worse than the best
        data = Data({"elbo": elbo})
        for trace in (stopper, *plateaus):
            trace.on_epoch_end(data)
        assert est.system.stop_training == (elbo == -191.0)
    for trace in plateaus:  # reduced after each of the two non-improving epochs: 1e-3 -> 1e-4 -> 1e-5
        assert float(trace.model.optimizer.learning_rate) == pytest.approx(1e-5)


def test_lr_plateau_never_raises_a_rate_below_fes_floor(small_mnist, tmp_path):
    """FE's ReduceLROnPlateau floors the rate at min_lr = 1e-6, which would raise a starting rate of 1e-7."""
    est = get_estimator(learning_rate=1e-7, lr_plateau=1, save_dir=str(tmp_path), data=small_mnist)
    plateaus = [t for t in est.traces if isinstance(t, ReduceLROnPlateau)]
    for elbo in (-200.0, -201.0, -202.0):
        for trace in plateaus:
            trace.on_epoch_end(Data({"elbo": elbo}))
    assert [float(t.model.optimizer.learning_rate) for t in plateaus] == [pytest.approx(1e-7)] * 2


@pytest.mark.slow
def test_cosine_schedule_sets_each_epochs_rate_for_both_models(small_mnist, tmp_path):
    """Epoch e of E trains at min + (init - min) / 2 * (1 + cos(pi * e / E)), min = init / 100, for both models."""
    import math

    from fastestimator.trace.trace import Trace

    class RatesSeen(Trace):  # the rate each model's optimizer holds while an epoch trains
        def __init__(self):
            super().__init__(mode="train")
            self.rates = []

        def on_epoch_end(self, data):
            self.rates.append([float(m.optimizer.learning_rate) for m in self.system.network.models])

    seen = RatesSeen()
    est = get_estimator(epochs=4, learning_rate=2e-3, lr_schedule="cosine", batch_size=10, train_steps_per_epoch=2,
                        eval_steps_per_epoch=1, save_dir=str(tmp_path), data=small_mnist, log_steps=0, traces=[seen])
    est.fit(warmup=False)
    expected = [2e-5 + (2e-3 - 2e-5) / 2 * (1 + math.cos(math.pi * e / 4)) for e in (1, 2, 3, 4)]
    assert [pair[0] for pair in seen.rates] == pytest.approx(expected, rel=1e-5)
    assert [pair[1] for pair in seen.rates] == pytest.approx(expected, rel=1e-5)
    with open(os.path.join(tmp_path, CONFIG_FILE)) as file:
        assert json.load(file)["lr_schedule"] == "cosine"
    with pytest.raises(ValueError, match="lr_schedule and lr_plateau both set the learning rate"):
        get_estimator(lr_schedule="cosine", lr_plateau=2, save_dir=str(tmp_path / "both"), data=small_mnist)
    assert not os.path.exists(tmp_path / "both")
    with pytest.raises(ValueError, match="lr_schedule must be None or one of cosine, got 'step'"):
        get_estimator(lr_schedule="step", save_dir=str(tmp_path / "bad"), data=small_mnist)


@pytest.mark.parametrize("loader, collections", [("tf.data", 0), ("fe", 1)])
def test_only_fes_own_loader_collects_garbage_after_an_epoch(small_mnist, loader, collections):
    # FE's Pipeline runs a full gc.collect() after every epoch (0.3 s here with TF and torch loaded) for its worker
    # processes; the tf.data pipeline has none and skips it, and still releases the pipeline for the next epoch.
    import gc
    pipeline = get_pipeline(batch_size=50, data=small_mnist, loader=loader, num_process=0 if loader == "fe" else None)
    seen = []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            seen.append(info)
    for epoch in (1, 2):
        with pipeline(mode="train", epoch=epoch, ds_id="", steps_per_epoch=1, output_keys={"x"}) as data:
            batch = next(iter(data))
            gc.callbacks.append(count)
        gc.callbacks.remove(count)
        assert tuple(np.shape(batch["x"]))[:1] == (50, )
        assert len(seen) == collections * epoch


class CountEval(fe.trace.Trace):
    """Counts the examples of every eval batch and the ones the ELBO trace averaged over."""
    def __init__(self):
        super().__init__(inputs="x", mode="eval")
        self.seen = []

    def on_epoch_begin(self, data: Data) -> None:
        self.seen.append(0)

    def on_batch_end(self, data: Data) -> None:
        self.seen[-1] += int(data["x"].shape[0])


@pytest.mark.slow
def test_the_test_elbo_and_best_model_see_every_test_image(tmp_path, small_mnist):
    """130 test images in batches of 100: both batches are evaluated each epoch (130 examples, not 100)."""
    counter = CountEval()
    get_estimator(epochs=2, batch_size=100, train_steps_per_epoch=1, data=small_mnist, log_steps=None, seed=0,
                  save_dir=str(tmp_path / "run"), traces=[counter]).fit()
    assert counter.seen == [130, 130]
