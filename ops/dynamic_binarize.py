"""DynamicBinarize: a fresh Bernoulli draw per pixel at every step (dynamic binarization of MNIST)."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_image_batch, require_tf


@traceable()
class DynamicBinarize(TensorOp):
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
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        if eval_threshold is not None and (isinstance(eval_threshold, bool)
                                           or not isinstance(eval_threshold, (int, float))
                                           or not 0.0 < eval_threshold < 1.0):
            raise ValueError("DynamicBinarize: eval_threshold must be None or a number strictly between 0 and 1, got "
                             f"{eval_threshold!r}")
        self.eval_threshold = None if eval_threshold is None else float(eval_threshold)
        self.in_list, self.out_list = True, True

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> List[tf.Tensor]:
        sample = state.get("mode") == "train" or self.eval_threshold is None
        out = []
        for key, x in zip(self.inputs, data):
            if not x.dtype.is_floating:
                raise ValueError(f"DynamicBinarize: input '{key}' must hold float images in 0..1, got {x.dtype.name}"
                                 " (put Rescale before it)")
            require_image_batch("DynamicBinarize", key, x, channels=None)
            x = tf.debugging.assert_all_finite(x, f"DynamicBinarize: input '{key}' contains NaN or Inf")
            in_range = tf.logical_and(tf.reduce_min(x) >= 0.0, tf.reduce_max(x) <= 1.0)
            with tf.control_dependencies([tf.debugging.Assert(in_range, [f"DynamicBinarize: input '{key}' must be in "
                                                                         "0..1"])]):
                cut = tf.random.uniform(tf.shape(x), dtype=x.dtype) if sample else self.eval_threshold
                out.append(tf.cast(x > cut, tf.float32))
        return out
