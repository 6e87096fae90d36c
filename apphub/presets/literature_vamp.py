"""The best configuration under the literature's protocol: the VampPrior (500 pseudo-inputs, Tomczak & Welling 2018) on
Burda et al.'s one-layer MLP (784-200-200-50, tanh), KL warm-up over 100 epochs, Adam 1e-3 with a cosine decay over
300 epochs, trained on dynamically binarized MNIST with the best epoch chosen on 10000 held-out training images, and
scored by the IW bound at K = 5000 on the 10000 test images binarized once by the seeded draw (`protocol:
dynamic_mnist`). It is the literature table's `vamp` variant (apphub/ablations/literature.yaml; a test checks that
both build the same run), whose numbers and times docs/ablations/README.md ("The literature's protocol") and
docs/reproduce.md give. It checkpoints every epoch and resumes where an interrupted run stopped.

    python apphub/presets/literature_vamp.py                   # -> runs/presets/literature_vamp/*.h5, prints the time
    pipeline-vae evaluate --save-dir runs/presets/literature_vamp   # the run's own evaluation: K=5000, 10000 images
    make reproduce-literature_vamp                             # both
    fastestimator train apphub/presets/literature_vamp.py --save_dir runs/presets/literature_vamp
"""
from typing import Any, Optional

import fastestimator as fe

from pipeline_vae import presets

NAME = "literature_vamp"


def get_estimator(save_dir: Optional[str] = f"runs/presets/{NAME}", seed: Optional[int] = 0,
                  data: Optional[str] = None, **overrides: Any) -> fe.Estimator:
    """The preset's estimator (`pipeline_vae.presets.PRESETS["literature_vamp"]`); `overrides` replace its settings
    (e.g. `epochs`, `train_steps_per_epoch` from `fastestimator train ... --epochs 1`)."""
    return presets.get_estimator(NAME, save_dir=save_dir, seed=seed, data=data, **overrides)


if __name__ == "__main__":
    presets.main(NAME)
