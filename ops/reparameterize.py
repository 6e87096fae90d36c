"""ReparameterizeOp: z = eps * exp(logvar / 2) + mean, eps ~ N(0, I)."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_tf
from ops.densities import clamp_logvar, reparameterize


@traceable()
class ReparameterizeOp(TensorOp):
    """Draw one latent sample per example with the reparameterization trick (Kingma & Welling 2014, Eq. 10).

    z = eps * exp(logvar / 2) + mean with eps ~ N(0, I), so gradients flow to `mean` and `logvar`. The noise shape is
    taken from `tf.shape(mean)` at run time, so partial batches and any batch size work. logvar is clipped to
    [-30, 20] first (`ops.densities.clamp_logvar`), so exp cannot overflow. Variants override `sample`.

    Args:
        inputs: Two keys, in order (mean, logvar), each [B, latent_dim].
        outputs: Key to write z to, [B, latent_dim].
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `inputs` is not two keys, the Network is not TensorFlow, or (when traced) the shapes differ.
    """
    def __init__(self,
                 inputs: Iterable[str] = ("mean", "logvar"),
                 outputs: str = "z",
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        if len(self.inputs) != 2 or len(self.outputs) != 1:
            raise ValueError(f"ReparameterizeOp: needs 2 inputs (mean, logvar) and 1 output, got inputs={self.inputs}, "
                             f"outputs={self.outputs}")

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def sample(self, mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
        """Draw z given the posterior parameters.

        Args:
            mean: Posterior means, [B, latent_dim].
            logvar: Posterior log-variances, [B, latent_dim].

        Returns:
            One sample per example, [B, latent_dim].
        """
        return reparameterize(mean, logvar, tf.random.normal(shape=tf.shape(mean), dtype=mean.dtype))

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> tf.Tensor:
        mean, logvar = data
        if not mean.shape.is_compatible_with(logvar.shape):
            raise ValueError(f"ReparameterizeOp: '{self.inputs[0]}' and '{self.inputs[1]}' must have the same shape, "
                             f"got {mean.shape} and {logvar.shape}")
        return self.sample(mean, clamp_logvar(logvar))
