"""Convolutional VAE on binarized MNIST (FastEstimator's CVAE tutorial, on pipeline-vae's op graph), or on your own
images with `--data`.

Run it either way:

    python apphub/cvae_mnist/cvae_mnist_tf.py
    fastestimator train apphub/cvae_mnist/cvae_mnist_tf.py --epochs 1 --batch_size 8 --train_steps_per_epoch 2
    fastestimator train apphub/cvae_mnist/cvae_mnist_tf.py --data my_images/ --likelihood discretized_logistic

Ablate by replacing or dropping a slot of the op graph (rescale, binarize, encode, split, reparameterize, decode,
loss), e.g. `pipeline_vae.get_estimator(ops={"binarize": None})`; `--loss mc_kl` trains with the seed's Monte Carlo KL
instead of the closed-form KL. The best models go to `save_dir/encoder_best_loss.h5` and `decoder_best_loss.h5`.
Defaults and checks of every argument are `pipeline_vae.settings`'.
"""
from typing import Optional

import fastestimator as fe

import pipeline_vae
from pipeline_vae.settings import default


def get_estimator(epochs: int = default("epochs"),
                  batch_size: int = default("batch_size"),
                  latent_dim: int = default("latent_dim"),
                  learning_rate: float = default("learning_rate"),
                  train_steps_per_epoch: Optional[int] = None,
                  eval_steps_per_epoch: Optional[int] = None,
                  save_dir: Optional[str] = None,
                  seed: Optional[int] = None,
                  data: Optional[str] = None,
                  loss: str = default("loss"),
                  likelihood: Optional[str] = default("likelihood"),
                  test_fraction: float = default("test_fraction")) -> fe.Estimator:
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
                                      loss=loss,
                                      likelihood=likelihood,
                                      test_fraction=test_fraction)


if __name__ == "__main__":
    get_estimator().fit()
