"""The fast latent-2 preset: the seed's convolutional CVAE at half its widths (Conv 16-32 / ConvT 32-16-1) on binarized
MNIST, Adam 3e-3 for 6 epochs, which reaches a test ELBO better than -156 nats in under a minute of training on a
2-core CPU (docs/reproduce.md has the measured times and numbers, and the search that chose these settings).

    python apphub/presets/fast_latent2.py                      # -> runs/presets/fast_latent2/*.h5, prints the time
    pipeline-vae evaluate --save-dir runs/presets/fast_latent2 --iw-samples 100
    make reproduce-fast_latent2                                # both
    fastestimator train apphub/presets/fast_latent2.py --save_dir runs/presets/fast_latent2
"""
from typing import Any, Optional

import fastestimator as fe

from pipeline_vae import presets

NAME = "fast_latent2"


def get_estimator(save_dir: Optional[str] = f"runs/presets/{NAME}", seed: Optional[int] = 0,
                  data: Optional[str] = None, **overrides: Any) -> fe.Estimator:
    """The preset's estimator (`pipeline_vae.presets.PRESETS["fast_latent2"]`); `overrides` replace its settings (e.g.
    `epochs`, `train_steps_per_epoch` from `fastestimator train ... --epochs 1`)."""
    return presets.get_estimator(NAME, save_dir=save_dir, seed=seed, data=data, **overrides)


if __name__ == "__main__":
    presets.main(NAME)
