"""HierarchicalPrior: a second stochastic layer z2 above z (= z1), as the prior of z."""
from typing import Iterable, Optional, Tuple, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops._checks import positive_int
from ops.densities import clamp_logvar, log_normal_pdf, reparameterize
from ops.standard_normal_prior import StandardNormalPrior


@traceable()
class HierarchicalPrior(StandardNormalPrior):
    """Two stochastic layers (z2 -> z1 -> x, Burda et al. 2016, Section 5): the prior of z1 is p(z1) = E_p(z2)[p(z1|z2)]
    with p(z2) = N(0, I), and the posterior gains q(z2|z1). At one z2 ~ q(z2|z1) the op writes

        log_pz = log p(z1|z2) + log p(z2) - log q(z2|z1),

    so that the loss's log p(x|z1) + log_pz - log q(z1|x) is exactly the two-layer ELBO's (and IWAE's) log weight
    log p(x, z1, z2) - log q(z1, z2|x) (its expectation over z2 is at most log p(z1)). A sibling of
    `StandardNormalPrior`: same keys; every loss, bound and sampler of the toolkit then scores the two-layer model.

    The two conditional Gaussians live in `model` (built with `fe.build`, trained by its own `UpdateOp`): a Keras model
    with inputs [z1 [N, L1], z2 [N, L2]] and outputs [q(z2|z1)'s mean and log-variance [N, 2 L2] (from z1 only),
    p(z1|z2)'s [N, 2 L1] (from z2 only)] (`pipeline_vae.models.build_hierarchical_prior`: Burda et al.'s 50-50 tanh
    layers each way).

    Args:
        model: The two conditionals, as above.
        upper_latent_dim: L2, the size of z2.
        inputs: Key of the samples z1, [N, L1].
        outputs: Key to write the one-sample log p(z1) estimate to, [N].
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `upper_latent_dim` is not a positive integer.
    """
    def __init__(self,
                 model: tf.keras.Model,
                 upper_latent_dim: int,
                 inputs: str = "z",
                 outputs: str = "log_pz",
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        self.model = model
        self.upper_latent_dim = positive_int(type(self).__name__, "upper_latent_dim", upper_latent_dim)

    def get_fe_models(self) -> set:
        return {self.model}

    def noise_size(self, latent_dim: int) -> int:
        """Standard normal values a draw needs: z1's and z2's."""
        return latent_dim + self.upper_latent_dim

    def _split(self, params: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        mean, logvar = tf.split(tf.cast(params, tf.float32), 2, axis=-1)
        return mean, clamp_logvar(logvar)

    def upper_posterior(self, z: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """q(z2|z1): mean and log-variance, each [N, L2]."""
        z = tf.convert_to_tensor(z, tf.float32)
        blank = tf.zeros(tf.concat([tf.shape(z)[:1], [self.upper_latent_dim]], 0))
        return self._split(self.model([z, blank], training=False)[0])

    def conditional(self, z: tf.Tensor, z2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """p(z1|z2): mean and log-variance, each [N, L1]."""
        return self._split(self.model([tf.convert_to_tensor(z, tf.float32), z2], training=False)[1])

    def log_prob(self, z: tf.Tensor, eps: Optional[tf.Tensor] = None) -> tf.Tensor:
        """log p(z1|z2) + log p(z2) - log q(z2|z1) at z2 = the reparameterized draw from q(z2|z1) at standard normal
        noise `eps` [N, L2] (None: drawn here), [N]."""
        z = tf.convert_to_tensor(z, tf.float32)
        mean2, logvar2 = self.upper_posterior(z)
        if eps is None:
            eps = tf.random.normal(tf.shape(mean2))
        z2 = reparameterize(mean2, logvar2, eps)
        mean1, logvar1 = self.conditional(z, z2)
        return log_normal_pdf(z, mean1, logvar1) + log_normal_pdf(z2, 0.0, 0.0) - log_normal_pdf(z2, mean2, logvar2)

    def sample(self, eps: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        """Ancestral draws: z2 = the last L2 columns of `eps` (N(0, I)), then z1 ~ p(z1|z2) with the first columns."""
        del u
        eps = tf.convert_to_tensor(eps, tf.float32)
        z2 = eps[:, -self.upper_latent_dim:]
        latent = tf.shape(eps)[1] - self.upper_latent_dim
        mean1, logvar1 = self.conditional(tf.zeros(tf.stack([tf.shape(eps)[0], latent])), z2)
        return reparameterize(mean1, logvar1, eps[:, :-self.upper_latent_dim])
