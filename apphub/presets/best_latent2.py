"""The best latent-2 preset: the Keras VAE examples' MLP (512-256 / 256-512) on binarized MNIST, Adam 3e-3 with a
cosine decay over 15 epochs, which reaches a test ELBO near -134 nats in about a minute of training on a 2-core CPU
(and -156 within its first 2 epochs).
The models ablation (docs/ablations/README.md) found the MLP both the best and the cheapest per epoch at latent 2;
docs/reproduce.md has the measured times and numbers. `fast_latent2` is the best of the seed's convolutional design.

    python apphub/presets/best_latent2.py                      # -> runs/presets/best_latent2/*.h5, prints the time
    pipeline-vae evaluate --save-dir runs/presets/best_latent2 --iw-samples 1000
    make reproduce-best_latent2                                # both
    fastestimator train apphub/presets/best_latent2.py --save_dir runs/presets/best_latent2
"""
from typing import Any, Optional

import fastestimator as fe

from pipeline_vae import presets

NAME = "best_latent2"


def get_estimator(save_dir: Optional[str] = f"runs/presets/{NAME}", seed: Optional[int] = 0,
                  data: Optional[str] = None, **overrides: Any) -> fe.Estimator:
    """The preset's estimator (`pipeline_vae.presets.PRESETS["best_latent2"]`); `overrides` replace its settings (e.g.
    `epochs`, `train_steps_per_epoch` from `fastestimator train ... --epochs 1`)."""
    return presets.get_estimator(NAME, save_dir=save_dir, seed=seed, data=data, **overrides)


if __name__ == "__main__":
    presets.main(NAME)
