"""DeterministicReparameterizeOp: z = mean, the autoencoder baseline of the latent slot."""
import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.reparameterize import ReparameterizeOp


@traceable()
class DeterministicReparameterizeOp(ReparameterizeOp):
    """No sampling: z = mean, and logvar is ignored. Same inputs (mean, logvar) and output as `ReparameterizeOp`.

    With `BetaVAELoss(beta=0)` the model is a plain autoencoder; with a KL loss the encoder's means are still pulled
    towards 0 (and its logvar towards 0), but the decoder never sees posterior noise. Arguments as for
    `ReparameterizeOp`.
    """
    def sample(self, mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
        """The posterior mean, [B, latent_dim] (`logvar` is not used)."""
        del logvar
        return tf.identity(mean)
