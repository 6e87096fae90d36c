"""Binarize: a TensorOp (not FE's NumpyOp of the same name) that thresholds images to {0., 1.}."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_image_batch, require_tf


@traceable()
class Binarize(TensorOp):
    """Threshold float images to {0., 1.}; a TensorOp, unlike `fastestimator.op.numpyop.univariate.Binarize`.

    A pixel becomes 1. when it is strictly above `threshold`, else 0. With the default 0.5 after `Rescale` this is the
    TensorFlow tutorial's `x / 255 > .5`, i.e. uint8 `x >= 128` (the static binarization of the seed).

    Args:
        inputs: Key(s) of float image batches in 0..1.
        outputs: Key(s) to write the binarized float32 batches to (same shape as the inputs).
        threshold: The cut, strictly between 0 and 1.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `threshold` is not in (0, 1), the Network is not TensorFlow, or (when the graph is traced) an
            input is not a floating image batch; at run time (tf.errors.InvalidArgumentError) if an input holds NaN/Inf.
    """
    def __init__(self,
                 inputs: Union[str, Iterable[str]] = "x",
                 outputs: Union[str, Iterable[str]] = "x",
                 threshold: float = 0.5,
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise ValueError(f"Binarize: threshold must be a number strictly between 0 and 1, got {threshold!r}")
        self.threshold = float(threshold)
        self.in_list, self.out_list = True, True

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def cut(self, key: str, x: tf.Tensor, state: Dict[str, Any]) -> Union[float, tf.Tensor]:
        """What a pixel must exceed to become 1: here the fixed threshold. Variants override this (checked, finite
        float `x` from input `key`)."""
        del key, x, state
        return self.threshold

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> List[tf.Tensor]:
        name = type(self).__name__
        out = []
        for key, x in zip(self.inputs, data):
            if not x.dtype.is_floating:
                raise ValueError(f"{name}: input '{key}' must hold float images in 0..1, got {x.dtype.name}"
                                 " (put Rescale before it)")
            require_image_batch(name, key, x, channels=None)
            x = tf.debugging.assert_all_finite(x, f"{name}: input '{key}' contains NaN or Inf")
            out.append(tf.cast(x > self.cut(key, x, state), tf.float32))
        return out
