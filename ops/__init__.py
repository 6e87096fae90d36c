"""FastEstimator TensorOps that make up the CVAE op graph, one op per module.

x (uint8) -> Rescale -> Binarize -> [encoder] -> SplitOp -> ReparameterizeOp -> [decoder] -> CVAELoss

Variants are siblings with the same keys, for ablations:
    binarize:        Binarize (static) | DynamicBinarize | none
    reparameterize:  ReparameterizeOp | DeterministicReparameterizeOp | MultiSampleReparameterizeOp (for IWAELoss)
    loss:            CVAELoss (MC KL) | AnalyticKLLoss | BetaVAELoss | KLWarmupLoss | IWAELoss

JointGradientOp computes every model's gradients in one backward pass for the UpdateOps (`build_graph(joint_update=True)`).
"""
from ops.analytic_kl_loss import AnalyticKLLoss
from ops.beta_vae_loss import BetaVAELoss
from ops.binarize import Binarize
from ops.cvae_loss import CVAELoss
from ops.densities import (bernoulli_log_likelihood, bits_per_dim, discretized_logistic_log_likelihood,
                           gaussian_log_likelihood, kl_to_standard_normal, log_normal_pdf)
from ops.deterministic_reparameterize import DeterministicReparameterizeOp
from ops.dynamic_binarize import DynamicBinarize
from ops.iwae_loss import IWAELoss
from ops.joint_gradient import JointGradientOp
from ops.kl_warmup_loss import KLWarmupLoss
from ops.multi_sample_reparameterize import MultiSampleReparameterizeOp
from ops.reparameterize import ReparameterizeOp
from ops.rescale import Rescale
from ops.split import SplitOp

__all__ = ["AnalyticKLLoss", "BetaVAELoss", "Binarize", "CVAELoss", "DeterministicReparameterizeOp",
           "DynamicBinarize", "IWAELoss", "JointGradientOp", "KLWarmupLoss", "MultiSampleReparameterizeOp",
           "ReparameterizeOp", "Rescale", "SplitOp", "bernoulli_log_likelihood", "bits_per_dim",
           "discretized_logistic_log_likelihood", "gaussian_log_likelihood", "kl_to_standard_normal", "log_normal_pdf"]
