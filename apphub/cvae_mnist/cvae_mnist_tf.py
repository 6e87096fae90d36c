"""Convolutional VAE on binarized MNIST (FastEstimator's CVAE tutorial, on pipeline-vae's op graph).

Run it either way:

    python apphub/cvae_mnist/cvae_mnist_tf.py
    fastestimator train apphub/cvae_mnist/cvae_mnist_tf.py --epochs 1 --batch_size 8 --train_steps_per_epoch 2

Ablate by replacing or dropping a slot of the op graph (rescale, binarize, encode, split, reparameterize, decode,
loss), e.g. `pipeline_vae.get_estimator(ops={"binarize": None})`; `--loss mc_kl` trains with the seed's Monte Carlo KL
instead of the closed-form KL. The best models go to `save_dir/encoder_best_loss.h5` and `decoder_best_loss.h5`.
"""
from typing import Optional

import fastestimator as fe

import pipeline_vae


def get_estimator(epochs: int = 5,
                  batch_size: int = 100,
                  latent_dim: int = 2,
                  learning_rate: float = 1e-3,
                  train_steps_per_epoch: Optional[int] = None,
                  eval_steps_per_epoch: Optional[int] = None,
                  save_dir: Optional[str] = None,
                  seed: Optional[int] = None,
                  data: Optional[str] = None,
                  loss: str = "analytic_kl") -> fe.Estimator:
    """The CVAE estimator; every argument is a CLI-friendly primitive (see `pipeline_vae.get_estimator`)."""
    return pipeline_vae.get_estimator(epochs=epochs,
                                      batch_size=batch_size,
                                      latent_dim=latent_dim,
                                      learning_rate=learning_rate,
                                      train_steps_per_epoch=train_steps_per_epoch,
                                      eval_steps_per_epoch=eval_steps_per_epoch,
                                      save_dir=save_dir,
                                      seed=seed,
                                      data=data,
                                      loss=loss)


if __name__ == "__main__":
    get_estimator().fit()
