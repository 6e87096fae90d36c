"""AnalyticKLLoss: the negative ELBO with the KL term in closed form."""
from typing import Optional

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.cvae_loss import CVAELoss
from ops.densities import kl_to_prior


@traceable()
class AnalyticKLLoss(CVAELoss):
    """CVAELoss with KL(q(z|x) || N(0, I)) computed exactly instead of estimated at the sample z.

    loss = -log p(x|z) + 1/2 sum_d (exp(logvar_d) + mean_d^2 - 1 - logvar_d) (Kingma & Welling 2014, Eq. 10). Same
    inputs (x, x_logit, mean, logvar, z), outputs and expectation as `CVAELoss`, with lower variance: only the
    reconstruction term is still a one-sample estimate. Arguments as for `CVAELoss`.

    With a learned prior (a sixth input, log p(z)) the KL has no closed form: E_q[log q(z|x)] is still exact and only
    E_q[-log p(z)] is estimated at the sample (`ops.densities.kl_to_prior`); with a posterior flow (log q(z|x) as an
    input too) the whole KL is the one-sample estimate, as in `CVAELoss`.
    """
    def kl_term(self, mean: tf.Tensor, logvar: tf.Tensor, z: tf.Tensor, log_pz: Optional[tf.Tensor] = None,
                log_qz: Optional[tf.Tensor] = None) -> tf.Tensor:
        """The KL per example, [B]: exact for the standard normal and a Gaussian posterior (`z` is then not used)."""
        return kl_to_prior(mean, logvar, z, log_pz, log_qz)
