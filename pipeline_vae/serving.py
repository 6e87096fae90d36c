"""The loader of the MLflow models `pipeline-vae export --format mlflow` writes (MLflow's `loader_module`): it reads
the SavedModel the model folder holds and serves its `encode` signature. No pickled code is involved.

    mlflow models serve -m runs/cvae/export/mlflow --env-manager local -p 5001
    curl -X POST localhost:5001/invocations -H 'Content-Type: application/json' -d '{"inputs": [[[[0.0], ...]]]}'
"""
from typing import Any, Dict, Optional

import numpy as np


class EncodeModel:
    """`predict(images)` -> {"mean": [N, L], "logvar": [N, L]} for float32 images [N, H, W, C] in 0..1."""
    def __init__(self, path: str) -> None:
        import tensorflow as tf
        self._tf = tf
        self._encode = tf.saved_model.load(path).signatures["encode"]

    def predict(self, model_input: Any, params: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
        if isinstance(model_input, dict):  # MLflow hands named tensors over as a dict
            model_input = model_input["images"]
        images = np.asarray(model_input, np.float32)
        out = self._encode(images=self._tf.constant(images))
        return {"mean": out["mean"].numpy(), "logvar": out["logvar"].numpy()}


def _load_pyfunc(path: str) -> EncodeModel:
    """MLflow's entry point: `path` is the SavedModel folder inside the MLflow model."""
    return EncodeModel(path)
