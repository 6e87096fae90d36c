"""SplitOp: encoder output [B, 2L] -> mean [B, L], logvar [B, L]."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_tf
from ops.densities import clamp_logvar


@traceable()
class SplitOp(TensorOp):
    """Split the encoder's output in two halves along the last axis: the posterior mean, then its log-variance.

    The log-variance is clipped to [-30, 20] (`ops.densities.LOGVAR_MIN/MAX`), so that nothing downstream (the
    reparameterization's exp(logvar / 2), the KL's exp(logvar), the Gaussian density's exp(-logvar)) can overflow in
    float32, whatever the encoder outputs.

    Args:
        inputs: Key of the encoder output, shape [B, 2 * latent_dim].
        outputs: Two keys, in order (mean, logvar), each [B, latent_dim].
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `outputs` is not two keys, the Network is not TensorFlow, or (when the graph is traced) the input
            is not rank 2 with an even last axis.
    """
    def __init__(self,
                 inputs: str = "meanlogvar",
                 outputs: Iterable[str] = ("mean", "logvar"),
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        if len(self.inputs) != 1 or len(self.outputs) != 2:
            raise ValueError(f"SplitOp: needs 1 input and 2 outputs (mean, logvar), got inputs={self.inputs}, "
                             f"outputs={self.outputs}")

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def forward(self, data: tf.Tensor, state: Dict[str, Any]) -> List[tf.Tensor]:
        if data.shape.rank != 2 or data.shape[-1] is None or data.shape[-1] % 2:
            raise ValueError(f"SplitOp: input '{self.inputs[0]}' must be [B, 2 * latent_dim], got shape {data.shape}")
        mean, logvar = tf.split(data, num_or_size_splits=2, axis=1)
        return [mean, clamp_logvar(logvar)]
