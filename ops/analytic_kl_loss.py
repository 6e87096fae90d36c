"""AnalyticKLLoss: the negative ELBO with the KL term in closed form."""
import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.cvae_loss import CVAELoss
from ops.densities import kl_to_standard_normal


@traceable()
class AnalyticKLLoss(CVAELoss):
    """CVAELoss with KL(q(z|x) || N(0, I)) computed exactly instead of estimated at the sample z.

    loss = -log p(x|z) + 1/2 sum_d (exp(logvar_d) + mean_d^2 - 1 - logvar_d) (Kingma & Welling 2014, Eq. 10). Same
    inputs (x, x_logit, mean, logvar, z), outputs and expectation as `CVAELoss`, with lower variance: only the
    reconstruction term is still a one-sample estimate. Arguments as for `CVAELoss`.
    """
    def kl_term(self, mean: tf.Tensor, logvar: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
        """The exact KL per example, [B] (`z` is not needed)."""
        del z
        return kl_to_standard_normal(mean, logvar)
