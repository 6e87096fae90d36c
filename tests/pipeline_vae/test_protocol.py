"""The literature's protocol (`protocol="dynamic_mnist"`) and validation splits: what the data holds, what the graph
does, what the saver chooses on."""
import os
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from fastestimator.trace.trace import Trace

from ops import Binarize, DynamicBinarize
from pipeline_vae import get_estimator
from pipeline_vae.data import DataSource, load_data
from pipeline_vae.data.sources import bernoulli_draw, fix_binarization, hold_out_validation
from pipeline_vae.resolve import resolve
from pipeline_vae.run_config import RunConfig
from pipeline_vae.slots import graph_for


def test_the_fixed_draw_is_seeded_binary_and_unbiased():
    x = np.random.default_rng(5).integers(0, 256, size=(400, 28, 28, 1), dtype=np.uint8)
    draw = bernoulli_draw(x, 3)
    assert draw.dtype == np.uint8 and set(np.unique(draw)) <= {0, 255}
    np.testing.assert_array_equal(draw, bernoulli_draw(x, 3))  # the same seed, the same images
    assert np.mean(draw != bernoulli_draw(x, 4)) > 0.1  # another seed, another draw
    # Each pixel is 255 with probability x / 255: over 313600 pixels the mean matches to well within 4 s.e.
    p = x / 255.0
    se = np.sqrt(np.sum(p * (1 - p))) / p.size
    assert abs(np.mean(draw / 255.0) - np.mean(p)) < 4 * se
    # Pixels at 0 and 255 are never flipped.
    assert np.all(draw[x == 0] == 0) and np.all(draw[x == 255] == 255)
    # The documented formula, written out here.
    expected = np.where(np.random.default_rng(3).random(x.shape) < x / 255.0, 255, 0)
    np.testing.assert_array_equal(draw, expected)


def test_a_validation_split_is_held_out_of_the_training_images_only(small_mnist):
    data = load_data(small_mnist)
    held = hold_out_validation(replace(data, source=replace(data.source, validation_fraction=0.2)))
    assert len(held.train) + len(held.validation) == len(data.train) and len(held.validation) == round(
        0.2 * len(data.train))
    np.testing.assert_array_equal(held.test.x, data.test.x)  # the test split is untouched
    rows = {row.tobytes() for row in data.train.x}
    assert {row.tobytes() for row in held.validation.x} <= rows and {row.tobytes() for row in held.train.x} <= rows
    together = np.sort(np.concatenate([held.train.y, held.validation.y]))
    np.testing.assert_array_equal(together, np.sort(data.train.y))  # a partition: nothing lost, nothing twice
    assert held.selection is held.validation and held.selection_name == "validation"
    assert data.selection is data.test and data.selection_name == "test"
    again = hold_out_validation(replace(data, source=replace(data.source, validation_fraction=0.2)))
    np.testing.assert_array_equal(again.validation.x, held.validation.x)  # seeded by split_seed


def test_the_protocol_reads_the_same_images_again_from_the_recorded_source(mnist):
    config, data = resolve({"protocol": "dynamic_mnist"}, "mnist")
    assert (len(data.train), len(data.validation), len(data.test)) == (50000, 10000, 10000)
    assert config.protocol == "dynamic_mnist" and config.iw_samples == 5000 and config.selection == "validation"
    assert config.data.fixed_binarization == 0 and config.data.validation_fraction == pytest.approx(1 / 6)
    assert set(np.unique(data.test.x)) == {0, 255} and set(np.unique(data.validation.x)) == {0, 255}
    assert len(np.unique(data.train.x)) > 2  # training images stay grey: the graph draws them afresh
    # The test images are one Bernoulli draw of the real test set, seeded 0; the validation images use seed 1.
    np.testing.assert_array_equal(data.test.x, bernoulli_draw(mnist.x_test[..., None], 0))
    grey = load_data(replace(config.data, fixed_binarization=None))  # the same split, not binarized
    np.testing.assert_array_equal(data.validation.x, bernoulli_draw(grey.validation.x, 1))
    np.testing.assert_array_equal(data.train.x, grey.train.x)
    reread = load_data(RunConfig.from_json(config.to_json()).data)  # what evaluate / plot / ablations load
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(reread, split).x, getattr(data, split).x)
    # The graph binarizes training images afresh (and cuts the fixed binary ones at 0.5 outside training: unchanged).
    binarize = [op for name, op in graph_for(config).named_ops if name == "binarize"]
    assert len(binarize) == 1 and isinstance(binarize[0], DynamicBinarize) and binarize[0].eval_threshold == 0.5
    seed_config, _ = resolve({}, "mnist")
    seed_binarize = [op for name, op in graph_for(seed_config).named_ops if name == "binarize"]
    assert type(seed_binarize[0]) is Binarize and seed_config.iw_samples == 100 and seed_config.selection == "test"


@pytest.mark.parametrize("raw, data, message", [
    ({"protocol": "dynamic_mnist"}, "digits", "protocol dynamic_mnist is MNIST's"),
    ({"protocol": "dynamic_mnist", "likelihood": "gaussian"}, "mnist", "needs the bernoulli likelihood, got gaussian"),
    ({"protocol": "literature"}, "mnist", "protocol must be one of seed, dynamic_mnist, got 'literature'"),
    ({"validation_fraction": 1.5}, "mnist", "validation_fraction must be None or a number between 0 and 1"),
])
def test_the_protocol_refuses_what_it_cannot_do_in_one_line(raw, data, message, tmp_path, mnist):
    if data == "digits":  # grey images that are not MNIST
        data = str(tmp_path / "grey.npz")
        np.savez(data, x=np.random.default_rng(0).integers(0, 256, size=(50, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=message) as info:
        resolve(raw, data)
    assert "\n" not in str(info.value)


def test_a_fixed_draw_of_files_is_refused(tmp_path):
    from PIL import Image
    for i in range(4):
        Image.fromarray(np.full((4, 4), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    data = load_data(DataSource(str(tmp_path), test_fraction=0.25))
    with pytest.raises(ValueError, match="fixed_binarization: needs images in memory"):
        fix_binarization(data, 0)


class EvalRecorder(Trace):
    """Keeps every eval batch's images and, after each epoch's evaluation, the logged ELBO and the encoder's weights."""
    def __init__(self, encoder) -> None:
        super().__init__(inputs=("x", "elbo"), mode="eval")
        self.encoder, self.images, self.epochs = encoder, [], []

    def on_batch_end(self, data) -> None:
        self.images.append(np.asarray(data["x"]))

    def on_epoch_end(self, data) -> None:
        self.epochs.append((float(data["elbo"]), [w.numpy().copy() for w in self.encoder.weights]))


@pytest.mark.slow
def test_the_best_model_is_chosen_on_the_validation_split_not_the_test_split(small_mnist, tmp_path):
    """Train 4 epochs under the protocol: every image the logged ELBO (and so the saver) saw is a validation image,
    none a test image, and the saved encoder is the one of the epoch with the best validation ELBO."""
    config, data = resolve({"protocol": "dynamic_mnist", "epochs": 4, "batch_size": 50, "latent_dim": 2,
                            "learning_rate": 3e-3, "log_steps": 0, "seed": 1}, small_mnist)
    from pipeline_vae.builders import build_estimator
    est = build_estimator(config, data, save_dir=str(tmp_path), log=None)
    encoder = next(m for m in est.network.models if m.model_name == "encoder")
    recorder = EvalRecorder(encoder)
    est.traces.append(recorder)
    est.fit(summary="protocol")
    seen = np.concatenate(recorder.images)
    validation = {row.tobytes() for row in (data.validation.x / 255.0).astype(np.float32)}
    test = {row.tobytes() for row in (data.test.x / 255.0).astype(np.float32)}
    seen_rows = {row.tobytes() for row in seen.astype(np.float32)}
    assert len(seen) == 4 * len(data.validation) and seen_rows <= validation and not seen_rows & test
    elbos = [elbo for elbo, _ in recorder.epochs]
    best = int(np.argmax(elbos))
    saved = tf.keras.models.load_model(os.path.join(tmp_path, "encoder_best_loss.h5"), compile=False)
    for kept, weights in zip(saved.weights, recorder.epochs[best][1]):
        np.testing.assert_array_equal(kept.numpy(), weights)
    others = [i for i in range(len(elbos)) if not np.allclose(recorder.epochs[i][1][0], recorder.epochs[best][1][0])]
    assert others  # the epochs' weights differ, so the comparison above picks one epoch
