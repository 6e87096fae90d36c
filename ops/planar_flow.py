"""PlanarFlow: a normalizing flow of planar steps on the posterior sample, with its log-density."""
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import tensorflow as tf
import torch
from fastestimator.op.tensorop.tensorop import TensorOp
from fastestimator.util.traceability_util import traceable

from ops._checks import positive_int, require_tf
from ops.densities import log_normal_pdf


@traceable()
class PlanarFlow(TensorOp):
    """Push the posterior sample z_0 ~ q_0(z|x) = N(mean, diag(exp(logvar))) through K planar steps (Rezende &
    Mohamed 2015, Eq. 10-12) and write z_K with log q_K(z_K|x) = log q_0(z_0|x) - sum_k log |det df_k/dz|.

    f_k(z) = z + u_k tanh(w_k . z + b_k); log |det df_k/dz| = log |1 + u_k . (1 - tanh^2(w_k . z + b_k)) w_k|. Each u_k
    is the constrained u^_k = u_k + (m(w_k . u_k) - w_k . u_k) w_k / |w_k|^2, m(a) = -1 + softplus(a), so that
    w_k . u^_k > -1 and every step is invertible (Appendix A). The `flow` slot's op, after `reparameterize`: the
    decoder and the prior read z_K, the loss reads log q_K (as `log_qz`, bound by `build_graph`).

    The parameters live in `model` (built with `fe.build`, trained by its own `UpdateOp`, saved as a best-model file):
    a Keras model mapping a [1, 1] tensor of ones to [1, K * (2 L + 1)]: the K vectors u, then the K vectors w, then
    the K offsets b (`pipeline_vae.models.build_planar_flow` makes one).

    Args:
        model: The parameters' model, [1, 1] -> [1, K * (2 L + 1)].
        steps: K, the number of planar steps.
        inputs: Three keys, in order (mean, logvar, z): mean and logvar [B, L], z [N, L] with N a multiple of B
            (after `MultiSampleReparameterizeOp`, sample-major: row j * B + b is a sample of image b).
        outputs: Two keys, in order (z_K [N, L], log q_K(z_K|x) [N]).
        mode: What mode(s) to execute this Op in. For example, "train", "eval", "test", or "infer". To execute
            regardless of mode, pass None. To execute in all modes except for a particular one, you can pass an argument
            like "!infer" or "!train".
        ds_id: What dataset id(s) to execute this Op in. To execute regardless of ds_id, pass None. To execute in all
            ds_ids except for a particular one, you can pass an argument like "!ds1".

    Raises:
        ValueError: If `steps` is not a positive integer, the keys are not 3 in and 2 out, the Network is not
            TensorFlow, or (when traced) the model's output does not hold K * (2 L + 1) values.
    """
    def __init__(self,
                 model: tf.keras.Model,
                 steps: int,
                 inputs: Iterable[str] = ("mean", "logvar", "z"),
                 outputs: Iterable[str] = ("z", "log_qz"),
                 mode: Union[None, str, Iterable[str]] = None,
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=inputs, outputs=outputs, mode=mode, ds_id=ds_id)
        positive_int(type(self).__name__, "steps", steps)
        if len(self.inputs) != 3 or len(self.outputs) != 2:
            raise ValueError(f"{type(self).__name__}: needs 3 inputs (mean, logvar, z) and 2 outputs (z, log_qz), got "
                             f"inputs={self.inputs}, outputs={self.outputs}")
        self.model, self.steps = model, steps

    def build(self, framework: str, device: Optional[torch.device] = None) -> None:
        require_tf(type(self).__name__, framework)

    def get_fe_models(self) -> set:
        return {self.model}

    def parameters(self, latent_dim: int) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The constrained u^ [K, L], w [K, L] and b [K] of the steps."""
        values = tf.cast(self.model(tf.ones([1, 1]), training=False), tf.float32)[0]
        size = self.steps * (2 * latent_dim + 1)
        if values.shape[0] is not None and values.shape[0] != size:
            raise ValueError(f"{type(self).__name__}: the model gives {values.shape[0]} values; {self.steps} steps on "
                             f"{latent_dim} units need {size}")
        u = tf.reshape(values[:self.steps * latent_dim], [self.steps, latent_dim])
        w = tf.reshape(values[self.steps * latent_dim:2 * self.steps * latent_dim], [self.steps, latent_dim])
        b = values[2 * self.steps * latent_dim:]
        wu = tf.reduce_sum(w * u, axis=1, keepdims=True)
        u_hat = u + (-1.0 + tf.nn.softplus(wu) - wu) * w / (tf.reduce_sum(tf.square(w), axis=1, keepdims=True) + 1e-8)
        return u_hat, w, b

    def transform(self, z: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """z_0 [N, L] -> (z_K [N, L], sum_k log |det df_k/dz| [N])."""
        z = tf.convert_to_tensor(z, tf.float32)
        u_hat, w, b = self.parameters(z.shape[-1])
        log_det = tf.zeros(tf.shape(z)[:1])
        for k in range(self.steps):
            a = tf.tanh(tf.linalg.matvec(z, w[k]) + b[k])  # [N]
            det = 1.0 + (1.0 - tf.square(a)) * tf.reduce_sum(w[k] * u_hat[k])
            log_det += tf.math.log(tf.maximum(det, 1e-12))  # > 0 by the constraint on u^
            z = z + a[:, None] * u_hat[k]
        return z, log_det

    def forward(self, data: List[tf.Tensor], state: Dict[str, Any]) -> List[tf.Tensor]:
        mean, logvar, z = data
        if z.shape.rank != 2 or mean.shape.rank != 2:
            raise ValueError(f"{type(self).__name__}: mean and z must be [B, L] and [N, L], got {mean.shape} and "
                             f"{z.shape}")
        reps = tf.shape(z)[0] // tf.shape(mean)[0]  # samples per image (sample-major rows)
        log_q0 = log_normal_pdf(z, tf.tile(mean, [reps, 1]), tf.tile(logvar, [reps, 1]))
        z_k, log_det = self.transform(z)
        return [z_k, log_q0 - log_det]
