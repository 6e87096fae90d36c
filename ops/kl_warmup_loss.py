"""KLWarmupLoss: the negative ELBO with a KL weight that rises linearly from 0 over the first epochs."""
from typing import Any, Dict, Iterable, Optional, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.beta_vae_loss import BetaVAELoss


@traceable()
class KLWarmupLoss(BetaVAELoss):
    """KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): the KL weight rises linearly from 0 to `beta`.

    In training epoch e (FE counts from 1) the weight is beta * min(1, (e - 1) / warmup_epochs): 0 in epoch 1, beta
    from epoch warmup_epochs + 1 on. The epoch is read from FE's `state["epoch"]` with TF math, so the graph is traced
    once, not once per epoch. Outside train mode the output is the plain negative ELBO, as in `BetaVAELoss`.

    Args:
        inputs: Five keys, in order (x, x_logit, mean, logvar, z); see `CVAELoss`.
        outputs: Key to write the loss to.
        warmup_epochs: Epochs over which the weight rises, >= 1.
        beta: The weight after warm-up, >= 0 (1: the ELBO).
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".
        average_loss: If True the output is the batch mean; if False it is the per-example loss [B].
        likelihood: The decoder likelihood's name (see `CVAELoss`): "bernoulli", "gaussian" or
            "discretized_logistic"; None: the run's in a graph, else `ops.names.DEFAULT_LIKELIHOOD`.

    Raises:
        ValueError: If `warmup_epochs` is not a positive integer, or for the reasons `BetaVAELoss` gives.
    """
    def __init__(self,
                 inputs: Iterable[str] = ("x", "x_logit", "mean", "logvar", "z"),
                 outputs: str = "loss",
                 warmup_epochs: int = 10,
                 beta: float = 1.0,
                 mode: Union[None, str, Iterable[str]] = "!infer",
                 ds_id: Union[None, str, Iterable[str]] = None,
                 average_loss: bool = True,
                 likelihood: Optional[str] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, beta=beta, mode=mode, ds_id=ds_id, average_loss=average_loss,
                         likelihood=likelihood)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 1:
            raise ValueError(f"{type(self).__name__}: warmup_epochs must be a positive integer, got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs

    def kl_weight(self, state: Dict[str, Any]) -> Union[float, tf.Tensor]:
        """beta * min(1, (epoch - 1) / warmup_epochs) in train mode, 1 otherwise."""
        if state.get("mode") != "train":
            return 1.0
        if "epoch" not in state:
            raise ValueError(f"{type(self).__name__}: needs FE's state['epoch'] in train mode")
        done = tf.cast(state["epoch"], tf.float32) - 1.0
        return self.beta * tf.clip_by_value(done / float(self.warmup_epochs), 0.0, 1.0)
