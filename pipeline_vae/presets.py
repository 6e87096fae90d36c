"""Named configurations that reached published numbers (docs/reproduce.md), each shipped as an `apphub/presets/` script
and a `make reproduce-<name>` target.

    est = pipeline_vae.presets.get_estimator("best_latent50", save_dir="runs/presets/best_latent50")
    est.fit()

A preset holds `get_estimator` settings only; anything not named keeps its default (`pipeline_vae.settings`).
"""
import argparse
import time
from typing import Any, Dict, List, Optional

#: name -> (what it is for, its settings).
PRESETS: Dict[str, Dict[str, Any]] = {
    "fast_latent2": {
        "about": "latent 2: a test ELBO better than -156 nats in under a minute of training on a 2-core CPU",
        "settings": {"epochs": 6, "batch_size": 100, "latent_dim": 2, "learning_rate": 3e-3, "widths": [16, 32]},
    },
    "best_latent2": {
        "about": "latent 2: the best test ELBO found in about a minute of training on a 2-core CPU (an MLP)",
        "settings": {"epochs": 15, "batch_size": 100, "latent_dim": 2, "learning_rate": 3e-3, "model": "mlp",
                     "lr_schedule": "cosine"},
    },
    "best_latent50": {
        "about": "latent 50: the best test ELBO and IW bound the seed's design reached in 30 epochs on a 2-core CPU",
        "settings": {"epochs": 30, "batch_size": 100, "latent_dim": 50, "learning_rate": 2e-3, "widths": [64, 128],
                     "lr_schedule": "cosine"},
    },
    "literature_vamp": {
        "about": "the literature's protocol (dynamically binarized MNIST, IW bound K=5000): the VampPrior on Burda et "
                 "al.'s MLP, the best of the literature table (apphub/ablations/literature.yaml's vamp variant)",
        "settings": {"epochs": 300, "batch_size": 100, "latent_dim": 50, "learning_rate": 1e-3, "model": "mlp_tanh",
                     "lr_schedule": "cosine", "protocol": "dynamic_mnist", "prior": "vamp", "prior_components": 500,
                     "kl_warmup": 100, "resume": True},
    },
}


def settings_of(name: str) -> Dict[str, Any]:
    """A copy of preset `name`'s settings.

    Raises:
        ValueError: If there is no such preset.
    """
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    return dict(PRESETS[name]["settings"])


def get_estimator(name: str, **overrides: Any):
    """`pipeline_vae.get_estimator` with preset `name`'s settings, then `overrides` (e.g. save_dir, seed, data)."""
    from pipeline_vae.builders import get_estimator as build
    return build(**{**settings_of(name), **overrides})


def main(name: str, argv: Optional[List[str]] = None) -> None:
    """Train preset `name` (the apphub scripts' `__main__`): `--save-dir` (default runs/presets/<name>), `--seed`
    (default 0), and for a quick look `--epochs` / `--train-steps-per-epoch` (default: the preset's), then print how
    long `fit` took."""
    parser = argparse.ArgumentParser(description=f"{name}: {PRESETS[name]['about']}")
    parser.add_argument("--save-dir", default=f"runs/presets/{name}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="instead of the preset's")
    parser.add_argument("--train-steps-per-epoch", type=int, default=None, help="cap on training steps per epoch")
    args = parser.parse_args(argv)
    shorter = {key: value for key, value in (("epochs", args.epochs),
                                             ("train_steps_per_epoch", args.train_steps_per_epoch)) if value}
    estimator = get_estimator(name, save_dir=args.save_dir, seed=args.seed, **shorter)
    start = time.perf_counter()
    estimator.fit(warmup=False)  # get_estimator has checked every op's keys; FE's warm-up would trace twice
    print(f"{name}: training took {time.perf_counter() - start:.1f} s (fit: every epoch and its test-set evaluation)")
