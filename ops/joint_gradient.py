"""JointGradientOp: the gradients of one loss for several models from a single backward pass."""
from typing import Any, Dict, List, Optional, Sequence, Union, Iterable

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_tf


@traceable()
class JointGradientOp(TensorOp):
    """Differentiate one loss with respect to the variables of several models in one `tape.gradient` call.

    FE's `UpdateOp(model, loss_name=...)` computes each model's gradients separately, so with an encoder and a
    decoder the backward pass through the decoder runs twice (once for the decoder's weights, once on the way to the
    encoder's). This op runs it once and writes each model's gradient list to its own key; `UpdateOp(model,
    loss_name, gradients=KEY)` then applies them with the model's own optimizer.

    Args:
        inputs: The loss key (the batch mean is differentiated).
        outputs: One key per model, in the order of `models`.
        models: The fe.build models whose trainable variables get gradients.
        mode: What mode(s) to execute this Op in (default "train": gradients are only needed to train).
        ds_id: What dataset id(s) to execute this Op in.

    Raises:
        ValueError: If the number of outputs differs from the number of models, or the Network is not TensorFlow.
    """
    def __init__(self,
                 inputs: str,
                 outputs: Sequence[str],
                 models: Sequence[tf.keras.Model],
                 mode: Union[None, str, Iterable[str]] = "train",
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        self.models = list(models)
        if len(self.outputs) != len(self.models) or not self.models:
            raise ValueError(f"JointGradientOp: needs one output key per model, got {len(self.outputs)} outputs for "
                             f"{len(self.models)} models")

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def forward(self, data: tf.Tensor, state: Dict[str, Any]) -> List[List[tf.Tensor]]:
        variables = [m.trainable_variables for m in self.models]
        flat = [v for group in variables for v in group]
        gradients = state["tape"].gradient(tf.reduce_mean(data), flat)
        out, start = [], 0
        for group in variables:
            out.append(gradients[start:start + len(group)])
            start += len(group)
        return out
