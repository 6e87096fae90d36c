"""BetaVAELoss: the negative ELBO with the KL term weighted by beta while training."""
from typing import Any, Dict, Iterable, Optional, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.analytic_kl_loss import AnalyticKLLoss


@traceable()
class BetaVAELoss(AnalyticKLLoss):
    """beta-VAE objective: -log p(x|z) + beta * KL(q(z|x) || N(0, I)) (Higgins et al. 2017, Eq. 4), KL in closed form.

    beta applies in train mode only. In every other mode the output is the plain negative ELBO (beta = 1), so the
    `elbo` the project logs and selects the best model on stays an ELBO, comparable across epochs and variants.
    beta = 1 is `AnalyticKLLoss`; beta = 0 drops the KL term (with `DeterministicReparameterizeOp`, a plain
    autoencoder). Same inputs (x, x_logit, mean, logvar, z) and output as `CVAELoss`.

    Args:
        inputs: Five keys, in order (x, x_logit, mean, logvar, z); see `CVAELoss`.
        outputs: Key to write the loss to.
        beta: Weight of the KL term while training, >= 0.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".
        average_loss: If True the output is the batch mean; if False it is the per-example loss [B].
        likelihood: The decoder likelihood's name (see `CVAELoss`): "bernoulli", "gaussian" or
            "discretized_logistic"; None: the run's in a graph, else `ops.names.DEFAULT_LIKELIHOOD`.

    Raises:
        ValueError: If `beta` is not a finite number >= 0, or for the reasons `CVAELoss` gives.
    """
    def __init__(self,
                 inputs: Iterable[str] = ("x", "x_logit", "mean", "logvar", "z"),
                 outputs: str = "loss",
                 beta: float = 1.0,
                 mode: Union[None, str, Iterable[str]] = "!infer",
                 ds_id: Union[None, str, Iterable[str]] = None,
                 average_loss: bool = True,
                 likelihood: Optional[str] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id, average_loss=average_loss,
                         likelihood=likelihood)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < float("inf"):
            raise ValueError(f"{type(self).__name__}: beta must be a finite number >= 0, got {beta!r}")
        self.beta = float(beta)

    def kl_weight(self, state: Dict[str, Any]) -> Union[float, tf.Tensor]:
        """beta in train mode, 1 otherwise."""
        return self.beta if state.get("mode") == "train" else 1.0
