"""VampPrior: log p(z) under the variational mixture of posteriors of learned pseudo-inputs."""
from typing import Iterable, Optional, Tuple, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops._checks import positive_int
from ops.densities import clamp_logvar, log_normal_mixture, reparameterize
from ops.standard_normal_prior import StandardNormalPrior


@traceable()
class VampPrior(StandardNormalPrior):
    """The VampPrior (Tomczak & Welling 2018, Eq. 9): p(z) = 1/K sum_k q(z | u_k), the encoder's posteriors at K
    learned pseudo-inputs u_k. A sibling of `StandardNormalPrior`: same keys.

    The pseudo-inputs live in `model` (built with `fe.build`, trained by its own `UpdateOp`): a Keras model that maps
    a [1, 1] tensor of ones to [1, K * H * W * C] values in [0, 1], read as K images of the data's shape
    (`pipeline_vae.models.build_pseudo_inputs` makes one). `encoder` is the run's encoder, whose output is split into
    mean and log-variance as `SplitOp` splits it (log-variance clipped to [-30, 20]); the prior's term trains it too.
    `build_graph` gives the op the encode slot's model when `encoder` is None.

    Args:
        model: The pseudo-inputs' model, [1, 1] -> [1, K * H * W * C].
        components: K, the number of pseudo-inputs.
        image_shape: (H, W, C) of the images.
        encoder: The encoder, [K, H, W, C] -> [K, 2 * L]; None: bound later (`bind_encoder`).
        inputs: Key of the samples z, [N, L].
        outputs: Key to write log p(z) to, [N].
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `components` is not a positive integer or `image_shape` not three positive integers; when
            evaluated without an encoder.
    """
    def __init__(self,
                 model: tf.keras.Model,
                 components: int,
                 image_shape: Tuple[int, int, int],
                 encoder: Optional[tf.keras.Model] = None,
                 inputs: str = "z",
                 outputs: str = "log_pz",
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        positive_int(type(self).__name__, "components", components)
        if not (isinstance(image_shape, (list, tuple)) and len(image_shape) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in image_shape)):
            raise ValueError(f"{type(self).__name__}: image_shape must be three positive integers, got "
                             f"{image_shape!r}")
        self.model, self.components, self.image_shape, self.encoder = model, components, tuple(image_shape), encoder

    def get_fe_models(self) -> set:
        return {self.model}

    def bind_encoder(self, encoder: tf.keras.Model) -> None:
        """Use `encoder` for the pseudo-inputs' posteriors if the op was given none."""
        if self.encoder is None:
            self.encoder = encoder

    def pseudo_inputs(self) -> tf.Tensor:
        """The K pseudo-inputs, [K, H, W, C]."""
        values = self.model(tf.ones([1, 1]), training=False)
        return tf.reshape(tf.cast(values, tf.float32), (self.components, ) + self.image_shape)

    def mixture(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """The posteriors of the pseudo-inputs: means and (clipped) log-variances, each [K, L]."""
        if self.encoder is None:
            raise ValueError(f"{type(self).__name__}: no encoder; give one, or put the op in a graph with an encode "
                             "slot")
        mean, logvar = tf.split(tf.cast(self.encoder(self.pseudo_inputs(), training=False), tf.float32), 2, axis=-1)
        return mean, clamp_logvar(logvar)

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        means, logvars = self.mixture()
        return log_normal_mixture(z, means, logvars)

    def sample(self, eps: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        """Draws from the mixture: component floor(u * C) of each row, then its mean + exp(logvar / 2) * eps."""
        eps = tf.convert_to_tensor(eps, tf.float32)
        means, logvars = self.mixture()
        index = tf.minimum(tf.cast(tf.floor(tf.convert_to_tensor(u, tf.float32) * self.components), tf.int32),
                           self.components - 1)
        return reparameterize(tf.gather(means, index), tf.gather(logvars, index), eps)
