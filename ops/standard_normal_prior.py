"""StandardNormalPrior: log p(z) under the standard normal prior N(0, I), the seed's."""
from typing import Any, Dict, Iterable, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_tf
from ops.densities import log_normal_pdf


@traceable()
class StandardNormalPrior(TensorOp):
    """Write log p(z) of every sample z under the prior, for the loss and the bounds: here N(0, I).

    The `prior` slot's ops share this contract: one input, the samples z ([N, L]: [B, L], or [k*B, L] after
    `MultiSampleReparameterizeOp`), one output, log p(z) per sample [N]. Siblings: `MixturePrior` (a learned mixture
    of Gaussians) and `VampPrior` (a mixture of the posteriors of learned pseudo-inputs). Each also offers
    `log_prob(z)` for evaluation and inference, outside a Network.

    Args:
        inputs: Key of the samples z, [N, L].
        outputs: Key to write log p(z) to, [N].
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `inputs` or `outputs` is not one key, the Network is not TensorFlow, or (when traced) z is not
            rank 2.
    """
    def __init__(self,
                 inputs: str = "z",
                 outputs: str = "log_pz",
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise ValueError(f"{type(self).__name__}: needs 1 input (z) and 1 output (log p(z)), got "
                             f"inputs={self.inputs}, outputs={self.outputs}")

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        """log p(z) for z [..., L], summed over the last axis: [...]."""
        return log_normal_pdf(z, 0.0, 0.0)

    def noise_size(self, latent_dim: int) -> int:
        """Standard normal values `sample` needs per draw (and evaluation draws per sample): here `latent_dim`."""
        return latent_dim

    def sample(self, eps: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        """Draws from the prior, from given noise (so a seeded NumPy generator makes them repeatable): eps
        [N, noise_size(L)] standard normal, u [N] uniform in [0, 1) (which picks a mixture's component; unused here)."""
        del u
        return tf.convert_to_tensor(eps, tf.float32)

    def forward(self, data: tf.Tensor, state: Dict[str, Any]) -> tf.Tensor:
        if data.shape.rank != 2:
            raise ValueError(f"{type(self).__name__}: input '{self.inputs[0]}' must be [N, latent_dim], got shape "
                             f"{data.shape}")
        return self.log_prob(data)
