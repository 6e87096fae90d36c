"""MixturePrior: log p(z) under a learned, equally weighted mixture of diagonal Gaussians."""
from typing import Iterable, Tuple, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops._checks import positive_int
from ops.densities import clamp_logvar, log_normal_mixture, reparameterize
from ops.standard_normal_prior import StandardNormalPrior


@traceable()
class MixturePrior(StandardNormalPrior):
    """A mixture-of-Gaussians prior p(z) = 1/C sum_c N(z; mu_c, diag(exp(logvar_c))) with learned means and
    log-variances (the "MoG prior" of Tomczak & Welling 2018, Section 3). A sibling of `StandardNormalPrior`: same
    keys.

    Its parameters live in `model` (built with `fe.build`, so that an `UpdateOp` trains it with the encoder and
    decoder and the best-model saver writes it): a Keras model that maps a [1, 1] tensor of ones to [1, C * 2 * L],
    the C means then the C log-variances, row by row (`pipeline_vae.models.build_mixture_prior` makes one).

    Args:
        model: The parameters' model, [1, 1] -> [1, 2 * C * L].
        components: C, the number of mixture components.
        inputs: Key of the samples z, [N, L].
        outputs: Key to write log p(z) to, [N].
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `components` is not a positive integer, or the model's output does not hold 2 * C * L values
            for samples of L units (when traced).
    """
    def __init__(self,
                 model: tf.keras.Model,
                 components: int,
                 inputs: str = "z",
                 outputs: str = "log_pz",
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        self.model, self.components = model, positive_int(type(self).__name__, "components", components)

    def get_fe_models(self) -> set:
        return {self.model}

    def mixture(self, latent_dim: int) -> Tuple[tf.Tensor, tf.Tensor]:
        """The components' means and (clipped) log-variances, each [C, L]."""
        params = self.model(tf.ones([1, 1]), training=False)
        if params.shape[-1] is not None and params.shape[-1] != 2 * self.components * latent_dim:
            raise ValueError(f"{type(self).__name__}: the model gives {params.shape[-1]} values; {self.components} "
                             f"components of {latent_dim} units need {2 * self.components * latent_dim}")
        means, logvars = tf.split(tf.reshape(tf.cast(params, tf.float32), [2, self.components, latent_dim]), 2)
        return means[0], clamp_logvar(logvars[0])

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        z = tf.convert_to_tensor(z, tf.float32)
        means, logvars = self.mixture(z.shape[-1])
        return log_normal_mixture(z, means, logvars)

    def sample(self, eps: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        """Draws from the mixture: component floor(u * C) of each row, then its mean + exp(logvar / 2) * eps."""
        eps = tf.convert_to_tensor(eps, tf.float32)
        means, logvars = self.mixture(eps.shape[-1])
        index = tf.minimum(tf.cast(tf.floor(tf.convert_to_tensor(u, tf.float32) * self.components), tf.int32),
                           self.components - 1)
        return reparameterize(tf.gather(means, index), tf.gather(logvars, index), eps)
