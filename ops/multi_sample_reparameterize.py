"""MultiSampleReparameterizeOp: k latent samples per example, stacked sample-major into [k*B, L]."""
from typing import Iterable, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.densities import reparameterize
from ops.reparameterize import ReparameterizeOp


@traceable()
class MultiSampleReparameterizeOp(ReparameterizeOp):
    """Draw `samples` latent vectors per example with the reparameterization trick, for `IWAELoss(k=samples)`.

    z[j*B + b] = eps * exp(logvar[b] / 2) + mean[b] with a fresh eps for every j < samples: the output is [samples*B, L]
    (sample-major), so the decoder runs once over all samples. samples = 1 is `ReparameterizeOp`.

    Args:
        inputs: Two keys, in order (mean, logvar), each [B, latent_dim].
        outputs: Key to write z to, [samples * B, latent_dim].
        samples: Samples per example, >= 1.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `samples` is not a positive integer, or for the reasons `ReparameterizeOp` gives.
    """
    def __init__(self,
                 inputs: Iterable[str] = ("mean", "logvar"),
                 outputs: str = "z",
                 samples: int = 5,
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"{type(self).__name__}: samples must be a positive integer, got {samples!r}")
        self.samples = samples

    def sample(self, mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
        """`samples` draws per example, [samples * B, latent_dim]."""
        eps = tf.random.normal(shape=tf.concat([[self.samples], tf.shape(mean)], axis=0), dtype=mean.dtype)
        z = reparameterize(mean[None], logvar[None], eps)
        return tf.reshape(z, [-1, tf.shape(mean)[1]])
