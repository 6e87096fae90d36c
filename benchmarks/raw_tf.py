"""The contender: a plain TensorFlow training loop for the same model, loss, optimizer and batch size, written the way
the TensorFlow CVAE tutorial writes it (`tf.function` train step over a shuffled, batched `tf.data` pipeline).

It deliberately imports nothing from the project but the two Keras model builders (so both contenders train the
identical architecture); data preparation, the loss (ELBO with the closed-form KL, the project's default) and the
update are written out here.
"""
import time
from typing import Callable, List, Optional

import numpy as np
import tensorflow as tf

from pipeline_vae.models import build_decoder, build_encoder


def binarize(images: np.ndarray) -> np.ndarray:
    """The tutorial's preprocessing: uint8 [N, 28, 28] -> float32 [N, 28, 28, 1] in {0, 1} (x / 255 > .5)."""
    return (images.reshape(-1, 28, 28, 1) / 255.0 > 0.5).astype(np.float32)


class RawCVAE:
    """Encoder + decoder + one Adam, trained by a `tf.function` step (the tutorial's `train_step`).

    Args:
        latent_dim: Size of z.
        learning_rate: Adam's learning rate.
        jit_compile: Compile the train step with XLA.
    """
    def __init__(self, latent_dim: int = 2, learning_rate: float = 1e-3, jit_compile: bool = False) -> None:
        self.latent_dim = latent_dim
        self.encoder, self.decoder = build_encoder(latent_dim), build_decoder(latent_dim)
        self.optimizer = tf.keras.optimizers.legacy.Adam(learning_rate)
        self.train_step = tf.function(self._train_step, jit_compile=jit_compile)
        self.eval_step = tf.function(self._loss)

    def _loss(self, x: tf.Tensor) -> tf.Tensor:
        mean, logvar = tf.split(self.encoder(x), num_or_size_splits=2, axis=1)
        eps = tf.random.normal(shape=tf.shape(mean))
        z = eps * tf.exp(logvar * 0.5) + mean
        x_logit = self.decoder(z)
        cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x)
        log_px_z = -tf.reduce_sum(cross_ent, axis=[1, 2, 3])
        kl = 0.5 * tf.reduce_sum(tf.exp(logvar) + tf.square(mean) - 1.0 - logvar, axis=1)
        return -tf.reduce_mean(log_px_z - kl)

    def _train_step(self, x: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self._loss(x)
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def test_elbo(self, test: tf.data.Dataset) -> float:
        """-mean loss over a batched test set, each batch weighted by its size."""
        total, count = 0.0, 0
        for x in test:
            n = int(x.shape[0])
            total += float(self.eval_step(x)) * n
            count += n
        return -total / count


def train_dataset(x_train: np.ndarray, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """The tutorial's input pipeline: binarized float32 tensors, shuffled over the whole set, batched."""
    data = binarize(x_train)
    return tf.data.Dataset.from_tensor_slices(data).shuffle(len(data), seed=seed).batch(batch_size)


def test_dataset(x_test: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(binarize(x_test)).batch(batch_size)


def run_steps(model: RawCVAE, dataset: tf.data.Dataset, steps: int,
              on_step: Optional[Callable[[], None]] = None) -> List[float]:
    """Train for `steps` steps (cycling the data), calling `on_step` after each; returns per-step end times."""
    times = []
    done = 0
    while done < steps:
        for x in dataset:
            model.train_step(x)
            times.append(time.perf_counter())
            if on_step is not None:
                on_step()
            done += 1
            if done == steps:
                break
    return times
