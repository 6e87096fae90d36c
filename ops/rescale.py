"""Rescale: uint8 images in 0..255 -> float32 in 0..1, with a channel axis."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_image_batch, require_tf


@traceable()
class Rescale(TensorOp):
    """Convert uint8 image batches (0..255) to float32 (0..1) and add the channel axis if it is missing.

    This runs at the head of the Network, so the Pipeline only batches raw uint8 (4x less data through the loader).
    [B, H, W] becomes [B, H, W, 1]; [B, H, W, 1] and [B, H, W, 3] (colour) keep their shape.

    Args:
        inputs: Key(s) of uint8 image batches to rescale.
        outputs: Key(s) to write the float32 batches to.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If the Network is not TensorFlow, or (when the graph is traced, before training) an input is not an
            integer image batch of rank 3 or 4; at run time (tf.errors.InvalidArgumentError) if a non-uint8 integer
            input holds values outside 0..255.
    """
    def __init__(self,
                 inputs: Union[str, Iterable[str]] = "x",
                 outputs: Union[str, Iterable[str]] = "x",
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        self.in_list, self.out_list = True, True

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> List[tf.Tensor]:
        out = []
        for key, x in zip(self.inputs, data):
            if not x.dtype.is_integer:
                raise ValueError(f"Rescale: input '{key}' must hold integer images in 0..255 (uint8), got {x.dtype.name}"
                                 "; for images already in 0..1 drop the 'rescale' slot (ops={'rescale': None})")
            require_image_batch("Rescale", key, x, channels=(1, 3))
            if x.dtype != tf.uint8:  # wider integers must still hold 0..255
                in_range = tf.logical_and(tf.reduce_min(x) >= 0, tf.reduce_max(x) <= 255)
                with tf.control_dependencies([tf.debugging.Assert(in_range, [f"Rescale: input '{key}' must be in "
                                                                             "0..255"])]):
                    x = tf.identity(x)
            x = tf.cast(x, tf.float32) / 255.0
            out.append(tf.expand_dims(x, -1) if x.shape.rank == 3 else x)
        return out
