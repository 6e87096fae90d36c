"""pipeline-vae: train, ablate and use convolutional VAEs on FastEstimator.

    est = pipeline_vae.get_estimator(epochs=5, latent_dim=2, save_dir="runs/cvae")
    est.fit()    # -> runs/cvae/encoder_best_loss.h5, decoder_best_loss.h5, cvae_config.json

The names below are imported on first use, so `import pipeline_vae` (and the CLI's argument parsing and `data`
command) does not pay for importing TensorFlow.
"""
import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "get_estimator": "builders", "get_network": "builders", "get_pipeline": "builders", "get_traces": "builders",
    "MNIST": "data", "DataError": "data", "load_mnist": "data", "load_data": "data", "ImageData": "data",
    "DataSource": "data", "RunConfig": "run_config",
    "build_decoder": "models", "build_encoder": "models",
    "SLOTS": "slots", "build_graph": "slots",
    "CVAE": "inference", "evaluate": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipeline_vae' has no attribute '{name}'")
    return getattr(importlib.import_module(f"pipeline_vae.{_EXPORTS[name]}"), name)


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
