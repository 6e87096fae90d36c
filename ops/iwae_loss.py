"""IWAELoss: the negative importance-weighted bound with k samples per image."""
from typing import Any, Dict, Iterable, List, Optional, Union

import tensorflow as tf
from fastestimator.util.traceability_util import traceable

from ops.cvae_loss import CVAELoss
from ops.densities import clamp_logvar, log_importance_weights, log_mean_exp


@traceable()
class IWAELoss(CVAELoss):
    """IWAE objective (Burda, Grosse & Salakhutdinov 2016, Eq. 8): -log (1/k sum_j w_j), w_j = p(x, z_j) / q(z_j|x).

    It needs k samples per image, so it replaces two upstream slots as well as "loss": "reparameterize" must hold
    `MultiSampleReparameterizeOp(samples=k)`, which makes z [k*B, L] (sample-major: row j*B + b is sample j of image
    b), and the "decode" slot's decoder then returns k*B logits. Same five input keys as `CVAELoss`, with those
    shapes; x, mean and logvar stay [B, ...]. k = 1 is exactly `CVAELoss` (one-sample Monte Carlo ELBO).

    The bound is trained on in train mode. In every other mode the output is the negative ELBO averaged over the k
    samples (-1/k sum_j log w_j), so the logged `elbo` stays an ELBO, comparable with the other loss variants.

    Args:
        inputs: Five keys, in order (x, x_logit, mean, logvar, z): x [B, H, W, C], x_logit [k*B, H, W, C * params], mean and
            logvar [B, L], z [k*B, L]; optionally a sixth, log p(z) of each sample under a learned prior, [k*B].
        outputs: Key to write the loss to.
        k: Importance samples per image, >= 1.
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".
        average_loss: If True the output is the batch mean; if False it is the per-example loss [B].
        likelihood: The decoder likelihood's name (see `CVAELoss`): "bernoulli", "gaussian" or
            "discretized_logistic"; None: the run's in a graph, else `ops.names.DEFAULT_LIKELIHOOD`.

    Raises:
        ValueError: If `k` is not a positive integer, `inputs` is not five keys, or (when traced with known batch
            sizes) x_logit or z does not hold k rows per image; tf.errors.InvalidArgumentError at run time for the
            latter when the batch size is only known then.
    """
    def __init__(self,
                 inputs: Iterable[str] = ("x", "x_logit", "mean", "logvar", "z"),
                 outputs: str = "loss",
                 k: int = 5,
                 mode: Union[None, str, Iterable[str]] = "!infer",
                 ds_id: Union[None, str, Iterable[str]] = None,
                 average_loss: bool = True,
                 likelihood: Optional[str] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id, average_loss=average_loss,
                         likelihood=likelihood)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"{type(self).__name__}: k must be a positive integer, got {k!r}")
        self.k = k

    def log_weights(self, x: tf.Tensor, x_logit: tf.Tensor, mean: tf.Tensor, logvar: tf.Tensor,
                    z: tf.Tensor, log_pz: Optional[tf.Tensor] = None, log_qz: Optional[tf.Tensor] = None) -> tf.Tensor:
        """log p(x|z_j) + log p(z_j) - log q(z_j|x) for each sample j and image b, [k, B] (log p(z_j) from `log_pz`,
        [k*B], when the run has a learned prior; else the standard normal's)."""
        batch = tf.shape(x)[0]
        message = (f"{type(self).__name__}(k={self.k}): '{self.inputs[1]}' and '{self.inputs[4]}' need k * batch rows; "
                   f"put MultiSampleReparameterizeOp(samples={self.k}) in the reparameterize slot")
        if x.shape[0] is not None and any(t.shape[0] not in (None, self.k * x.shape[0]) for t in (x_logit, z)):
            raise ValueError(f"{message} (got {x_logit.shape[0]} and {z.shape[0]} rows for a batch of {x.shape[0]})")
        checks = [tf.debugging.assert_equal(tf.shape(t)[0], self.k * batch, message=message) for t in (x_logit, z)]
        with tf.control_dependencies(checks):  # nothing below may run before the checks
            x, x_logit, mean, logvar, z = (tf.identity(t) for t in (x, x_logit, mean, logvar, z))
        targets = tf.tile(x, tf.concat([[self.k], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))
        tiled = [tf.tile(t, [self.k, 1]) for t in (mean, logvar)]
        log_w = log_importance_weights(self.reconstruction_term(targets, x_logit), z, tiled[0], tiled[1], log_pz, log_qz)
        return tf.reshape(log_w, [self.k, batch])

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> tf.Tensor:
        x, x_logit, mean, logvar, z = data[:5]
        log_w = self.log_weights(x, x_logit, mean, clamp_logvar(logvar), z, **dict(zip(self.density_roles, data[5:])))
        if state.get("mode") == "train":
            loss = -log_mean_exp(log_w, axis=0)
        else:
            loss = -tf.reduce_mean(log_w, axis=0)
        return tf.reduce_mean(loss) if self.average_loss else loss
