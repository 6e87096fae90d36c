"""The best latent-50 preset: the seed's convolutional design at twice its widths (Conv 64-128 / ConvT 128-64-1),
Adam 2e-3 with a cosine decay over 30 epochs, on binarized MNIST (docs/reproduce.md has the measured numbers and how
these settings were chosen, with the loss table of docs/ablations/README.md).

    python apphub/presets/best_latent50.py                      # -> runs/presets/best_latent50/*.h5, prints the time
    pipeline-vae evaluate --save-dir runs/presets/best_latent50 --iw-samples 1000
    make reproduce-best_latent50                                # both
    fastestimator train apphub/presets/best_latent50.py --save_dir runs/presets/best_latent50
"""
from typing import Any, Optional

import fastestimator as fe

from pipeline_vae import presets

NAME = "best_latent50"


def get_estimator(save_dir: Optional[str] = f"runs/presets/{NAME}", seed: Optional[int] = 0,
                  data: Optional[str] = None, **overrides: Any) -> fe.Estimator:
    """The preset's estimator (`pipeline_vae.presets.PRESETS["best_latent50"]`); `overrides` replace its settings (e.g.
    `epochs`, `train_steps_per_epoch` from `fastestimator train ... --epochs 1`)."""
    return presets.get_estimator(NAME, save_dir=save_dir, seed=seed, data=data, **overrides)


if __name__ == "__main__":
    presets.main(NAME)
