"""DynamicBinarize: a fresh Bernoulli draw per pixel at every step (dynamic binarization of MNIST)."""
from typing import Any, Dict, Iterable, Optional, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.binarize import Binarize


@traceable()
class DynamicBinarize(Binarize):
    """Binarize float images by sampling: each pixel becomes 1. with probability equal to its intensity.

    A new draw at every training step, so the model sees a different binary version of each digit every epoch (the
    standard "dynamically binarized MNIST" of the VAE literature, e.g. Burda et al. 2016). The expected output is the
    input intensity. Outside train mode the images are thresholded at `eval_threshold` (as `Binarize` does), so the
    logged test ELBO uses the same fixed targets as the static baseline; `eval_threshold=None` samples in every mode.
    A sibling of `Binarize`: same inputs and outputs.

    Args:
        inputs: Key(s) of float image batches in 0..1.
        outputs: Key(s) to write the binary float32 batches to (same shape as the inputs).
        eval_threshold: The static threshold used outside train mode, strictly between 0 and 1, or None.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `eval_threshold` is not None or in (0, 1), the Network is not TensorFlow, or (when the graph is
            traced) an input is not a floating image batch; at run time (tf.errors.InvalidArgumentError) if an input
            holds NaN/Inf or values outside 0..1.
    """
    def __init__(self,
                 inputs: Union[str, Iterable[str]] = "x",
                 outputs: Union[str, Iterable[str]] = "x",
                 eval_threshold: Optional[float] = 0.5,
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        if eval_threshold is not None and (isinstance(eval_threshold, bool)
                                           or not isinstance(eval_threshold, (int, float))
                                           or not 0.0 < eval_threshold < 1.0):
            raise ValueError("DynamicBinarize: eval_threshold must be None or a number strictly between 0 and 1, got "
                             f"{eval_threshold!r}")
        super().__init__(inputs=inputs, outputs=outputs, threshold=0.5 if eval_threshold is None else eval_threshold,
                         mode=mode, ds_id=ds_id)
        self.eval_threshold = None if eval_threshold is None else float(eval_threshold)

    def cut(self, key: str, x: tf.Tensor, state: Dict[str, Any]) -> Union[float, tf.Tensor]:
        """Uniform noise in train mode (or always, without `eval_threshold`); else the static threshold."""
        in_range = tf.logical_and(tf.reduce_min(x) >= 0.0, tf.reduce_max(x) <= 1.0)
        with tf.control_dependencies([tf.debugging.Assert(in_range, [f"DynamicBinarize: input '{key}' must be in "
                                                                     "0..1"])]):
            if state.get("mode") != "train" and self.eval_threshold is not None:
                return tf.constant(self.eval_threshold, x.dtype)
            return tf.random.uniform(tf.shape(x), dtype=x.dtype)
