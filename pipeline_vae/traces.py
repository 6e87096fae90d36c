"""FastEstimator Traces the builders add: an exact per-example eval mean, and a best-model saver that writes full models.
"""
import os
import warnings
from typing import Iterable, Optional, Union

import numpy as np
import tensorflow as tf
from fastestimator.trace.io.best_model_saver import BestModelSaver
from fastestimator.trace.trace import Trace
from fastestimator.util.data import Data
from fastestimator.util.traceability_util import traceable

from pipeline_vae.atomic import atomic_path


def save_full_model(model: tf.keras.Model, path: str) -> str:
    """Save a full Keras model (architecture + weights, no optimizer) as HDF5, atomically (see `atomic_path`).

    The result loads with both `tf.keras.models.load_model(path, compile=False)` and
    `fe.build(..., weights_path=path)`.

    Args:
        model: The model to save.
        path: The destination `.h5` file.

    Returns:
        `path`.
    """
    logger, level = tf.get_logger(), tf.get_logger().level
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # HDF5 is chosen on purpose (users' load_model code reads it): silence Keras' "legacy format" notice and TF's
        # "compiled metrics have yet to be built" log line, both about this call only.
        warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`.*")
        logger.setLevel("ERROR")
        try:
            model.save(tmp, include_optimizer=False, save_format="h5")
        finally:
            logger.setLevel(level)
    return path


@traceable()
class FullModelSaver(BestModelSaver):
    """FE's BestModelSaver, writing the full model as `.h5` (not weights only) through a temporary file and a rename.

    FE 1.7's BestModelSaver writes `model.save_weights(...)`, which `tf.keras.models.load_model` cannot read. This keeps
    its bookkeeping (best value, `since_best_*`, `load_best_final`) and replaces only the write, with
    `save_full_model`. The file is `<save_dir>/<weights_name>.h5` (default `<model_name>_best_<metric>.h5`).

    Args:
        model: A model instance compiled with fe.build.
        save_dir: Folder path into which to save the model.
        metric: Eval metric name to monitor. If None, the model's loss will be used.
        save_best_mode: Can be 'min' or 'max'.
        weights_name: The exact file name (without `.h5`). If None default model prefix will be used.
        load_best_final: Whether to automatically reload the best model (if available) after training.

    Raises:
        ValueError: If `save_best_mode` is an unacceptable string.
    """
    def __init__(self,
                 model: tf.keras.Model,
                 save_dir: str,
                 metric: Optional[str] = None,
                 save_best_mode: str = "min",
                 weights_name: Optional[str] = None,
                 load_best_final: bool = False) -> None:
        super().__init__(model=model,
                         save_dir=save_dir,
                         metric=metric,
                         save_best_mode=save_best_mode,
                         weights_name=weights_name,
                         load_best_final=load_best_final)

    @property
    def file_path(self) -> str:
        """Where the best model is (or will be) saved."""
        return os.path.join(self.save_dir, self.model_name + ".h5")

    def on_epoch_end(self, data: Data) -> None:
        save_dir, self.save_dir = self.save_dir, None  # the parent updates best/since_best; it must not write
        try:
            super().on_epoch_end(data)
        finally:
            self.save_dir = save_dir
        if self.since_best == 0 and self.save_dir:  # since_best is 0 right after an improvement
            self.model_path = save_full_model(self.model, self.file_path)
            print(f"FastEstimator-FullModelSaver: Saved model to {self.model_path}")


@traceable()
class ExampleMean(Trace):
    """The exact per-example mean of a value over an epoch, weighting each batch by its size.

    FE's eval log averages per-batch values without weights, which is off when the last batch is partial. This trace
    sums `scale * value * batch_size` (or `scale * sum(value)` for a per-example vector) and divides by the number of
    examples, e.g. `elbo` = -mean(loss) over the whole test set.

    Args:
        inputs: The key to average: a per-batch mean (scalar) or per-example values [B].
        outputs: The key to write the epoch mean to.
        batch_key: A batch key whose first axis gives the batch size (used when the value is a scalar).
        scale: A factor applied to the mean (-1 turns a loss into an ELBO).
        mode: What mode(s) to execute this Trace in. For example, "train", "eval", "test", or "infer".
        ds_id: What dataset id(s) to execute this Trace in.

    Raises:
        ValueError: If no examples were seen in an epoch.
    """
    def __init__(self,
                 inputs: str = "loss",
                 outputs: str = "elbo",
                 batch_key: str = "x",
                 scale: float = -1.0,
                 mode: Union[None, str, Iterable[str]] = "eval",
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=[inputs, batch_key], outputs=outputs, mode=mode, ds_id=ds_id)
        self.scale = scale
        self.total = 0.0
        self.count = 0

    def on_epoch_begin(self, data: Data) -> None:
        self.total, self.count = 0.0, 0

    def on_batch_end(self, data: Data) -> None:
        value = np.asarray(data[self.inputs[0]], dtype=np.float64)
        if value.ndim == 0:
            n = int(np.shape(data[self.inputs[1]])[0])
            self.total += float(value) * n
        else:
            n = value.size
            self.total += float(value.sum())
        self.count += n

    def on_epoch_end(self, data: Data) -> None:
        if self.count == 0:
            raise ValueError(f"ExampleMean: no examples seen for '{self.inputs[0]}' this epoch")
        data.write_with_log(self.outputs[0], self.scale * self.total / self.count)
