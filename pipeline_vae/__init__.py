"""pipeline-vae: train, ablate and use convolutional VAEs on FastEstimator.

    est = pipeline_vae.get_estimator(epochs=5, latent_dim=2, save_dir="runs/cvae")
    est.fit()    # -> runs/cvae/encoder_best_loss.h5, decoder_best_loss.h5, cvae_config.json

The names below are imported on first use, so `import pipeline_vae` (and the CLI's argument parsing and `data`
command) does not pay for importing TensorFlow.

On a machine without an NVIDIA driver, importing this package before TensorFlow sets `TF_CPP_MIN_LOG_LEVEL=3`
(unless it is set already): TensorFlow 2.15's C++ start-up lines ("Unable to register cuDNN/cuFFT/cuBLAS factory",
oneDNN and CPU-feature notices) say nothing useful on a CPU. With a GPU driver present they are left on, for their
diagnostics; the `pipeline-vae` command silences them everywhere.
"""
import importlib
import importlib.util
import os
import sys
from typing import Any

if "tensorflow" not in sys.modules and not os.path.exists("/proc/driver/nvidia"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"pipeline_vae.{_EXPORTS[name]}"), name)
    if importlib.util.find_spec(f"pipeline_vae.{name}") is not None:  # a submodule: `pipeline_vae.metrics.evaluate`
        return importlib.import_module(f"pipeline_vae.{name}")
    raise AttributeError(f"module 'pipeline_vae' has no attribute '{name}'")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
