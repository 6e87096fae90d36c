"""CVAELoss: the single-sample Monte Carlo estimate of the negative ELBO."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.loss.loss import LossOp
from fastestimator.util.traceability_util import traceable

from ops._checks import require_tf
from ops.densities import check_decoder_output, clamp_logvar, get_likelihood, monte_carlo_kl


@traceable()
class CVAELoss(LossOp):
    """Negative ELBO of a VAE, estimated with one sample z ~ q(z|x).

    loss = -(log p(x|z) + log p(z) - log q(z|x)) per example (Kingma & Welling 2014, Eq. 3 with one MC sample), the
    seed's `CVAELoss`. log p(x|z) is the decoder likelihood (`ops.densities.LIKELIHOODS`; the seed's Bernoulli on the
    decoder *logits* by default) summed over all pixels, p(z) is
    N(0, I) and q(z|x) is N(mean, diag(exp(logvar))), logvar clipped to [-30, 20]. Variants override `reconstruction_term`, `kl_term` or
    `kl_weight` (the factor on the KL term: 1 here, beta for the beta-VAE and KL warm-up variants).

    With a learned prior (the `prior` slot: `MixturePrior`, `VampPrior`) a sixth key holds log p(z) of each sample,
    [B]; `build_graph` adds it (`bind_prior`), and the KL term uses it instead of the standard normal's density. With a
    posterior flow (the `flow` slot: `PlanarFlow`) another key holds log q(z|x) of the flow's sample (`bind_posterior`),
    used instead of the Gaussian's; z is then the flow's output.

    Args:
        inputs: Five keys, in order (x, x_logit, mean, logvar, z): targets [B, H, W, C] in 0..1, the decoder output
            [B, H, W, C * params] (the likelihood's parameters: logits for the Bernoulli), posterior mean and
            log-variance [B, L], and the sample z [B, L]; optionally a sixth, log p(z) per sample [B].
        outputs: Key to write the loss to.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".
        average_loss: If True the output is the batch mean (what UpdateOp and the eval log use); if False it is the
            per-example loss [B].
        likelihood: The decoder likelihood's name: "bernoulli" (the seed's), "gaussian" or "discretized_logistic".
            None (the default): the run's, which `build_graph` binds (`bind_likelihood`); on its own the default
            `ops.names.DEFAULT_LIKELIHOOD`, the seed's Bernoulli.

    Raises:
        ValueError: If `inputs` is not five or six keys, `likelihood` is unknown, the Network is not TensorFlow, or (when the
            graph is traced) x_logit does not hold the likelihood's parameters for x, or mean, logvar and z differ in
            shape.
    """
    def __init__(self,
                 inputs: Iterable[str] = ("x", "x_logit", "mean", "logvar", "z"),
                 outputs: str = "loss",
                 mode: Union[None, str, Iterable[str]] = "!infer",
                 ds_id: Union[None, str, Iterable[str]] = None,
                 average_loss: bool = True,
                 likelihood: Optional[str] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id, average_loss=average_loss)
        try:
            self.likelihood = get_likelihood(likelihood)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: {err}") from None
        self.likelihood_given = likelihood is not None
        #: The roles of the inputs after the five: "log_pz" (a sixth input given to the constructor is log p(z)), then
        #: whatever `bind_prior` / `bind_posterior` add.
        self.density_roles = ["log_pz"][:max(0, len(self.inputs) - 5)]
        if len(self.inputs) not in (5, 6) or len(self.outputs) != 1:
            raise ValueError(f"{type(self).__name__}: needs 5 inputs (x, x_logit, mean, logvar, z), or 6 with "
                             f"log p(z), and 1 output, got inputs={self.inputs}, outputs={self.outputs}")

    def bind_likelihood(self, name: str) -> None:
        """Use the run's likelihood `name` if the constructor was given none; a given one stays (and the graph
        builder refuses it when it differs from the run's)."""
        if not self.likelihood_given:
            self.likelihood = get_likelihood(name)

    def bind_prior(self, key: str) -> None:
        """Read log p(z) from `key` (the `prior` slot's output) if the op was not given a sixth input."""
        self._bind("log_pz", key)

    def bind_posterior(self, key: str) -> None:
        """Read log q(z|x) from `key` (the `flow` slot's output) instead of the Gaussian's density."""
        self._bind("log_qz", key)

    def _bind(self, role: str, key: str) -> None:
        if role not in self.density_roles:
            self.inputs.append(key)
            self.density_roles.append(role)

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def reconstruction_term(self, x: tf.Tensor, x_logit: tf.Tensor) -> tf.Tensor:
        """log p(x|z) per example, [B], under the op's likelihood."""
        return self.likelihood.log_prob(x, x_logit)

    def kl_term(self, mean: tf.Tensor, logvar: tf.Tensor, z: tf.Tensor, log_pz: Optional[tf.Tensor] = None,
                log_qz: Optional[tf.Tensor] = None) -> tf.Tensor:
        """The KL(q(z|x) || p(z)) estimate per example, [B]: here log q(z|x) - log p(z) at the one sample z (p: the
        prior whose log-density `log_pz` holds, else the standard normal; q: the flow's `log_qz`, else the
        Gaussian's)."""
        return monte_carlo_kl(z, mean, logvar, log_pz, log_qz)

    def kl_weight(self, state: Dict[str, Any]) -> Union[float, tf.Tensor]:
        """The factor on the KL term for this step (1: the ELBO). `state` is FE's (it has "mode" and "epoch")."""
        del state
        return 1.0

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> tf.Tensor:
        x, x_logit, mean, logvar, z = data[:5]
        densities = dict(zip(self.density_roles, data[5:]))  # log_pz, log_qz: whichever the graph gives
        check_decoder_output(self.likelihood, x.shape, x_logit.shape,
                             f"{type(self).__name__}: '{self.inputs[1]}' for '{self.inputs[0]}'")
        if not (mean.shape.is_compatible_with(logvar.shape) and mean.shape.is_compatible_with(z.shape)):
            raise ValueError(f"{type(self).__name__}: mean {mean.shape}, logvar {logvar.shape} and z {z.shape} must "
                             "have the same shape")
        logvar = clamp_logvar(logvar)  # [-30, 20]: exp(logvar) and exp(-logvar) stay finite in float32
        # (a subclass written before priors overrides kl_term(mean, logvar, z): it is called that way without them)
        kl = self.kl_term(mean, logvar, z, **densities) if densities else self.kl_term(mean, logvar, z)
        loss = -self.reconstruction_term(x, x_logit) + self.kl_weight(state) * kl
        return tf.reduce_mean(loss) if self.average_loss else loss
