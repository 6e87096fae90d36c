"""FastEstimator TensorOps that make up the CVAE op graph, one op per module.

x (uint8) -> Rescale -> Binarize -> [encoder] -> SplitOp -> ReparameterizeOp -> [decoder] -> CVAELoss

Variants are siblings with the same keys, for ablations:
    binarize:        Binarize (static) | DynamicBinarize | none
    reparameterize:  ReparameterizeOp | DeterministicReparameterizeOp | MultiSampleReparameterizeOp (for IWAELoss)
    loss:            CVAELoss (MC KL) | AnalyticKLLoss | BetaVAELoss | KLWarmupLoss | IWAELoss
    flow:            none | PlanarFlow   ((mean, logvar, z) -> (z, log q(z|x)))
    prior:           StandardNormalPrior | MixturePrior | VampPrior | HierarchicalPrior   (z -> log p(z))

JointGradientOp computes every model's gradients in one backward pass for the UpdateOps (`build_graph(joint_update=True)`).

Importing `ops` is cheap: each name is imported (with TensorFlow) on first use, so `ops.names` serves settings and
the CLI before TensorFlow loads.
"""
import importlib
from typing import Any

_EXPORTS = {
    "AnalyticKLLoss": "analytic_kl_loss", "BetaVAELoss": "beta_vae_loss", "Binarize": "binarize",
    "CVAELoss": "cvae_loss", "DeterministicReparameterizeOp": "deterministic_reparameterize",
    "DynamicBinarize": "dynamic_binarize", "HierarchicalPrior": "hierarchical_prior", "IWAELoss": "iwae_loss", "JointGradientOp": "joint_gradient",
    "KLWarmupLoss": "kl_warmup_loss", "MixturePrior": "mixture_prior",
    "MultiSampleReparameterizeOp": "multi_sample_reparameterize", "PlanarFlow": "planar_flow",
    "StandardNormalPrior": "standard_normal_prior",
    "VampPrior": "vamp_prior",
    "ReparameterizeOp": "reparameterize", "Rescale": "rescale", "SplitOp": "split",
    "bernoulli_log_likelihood": "densities", "bits_per_dim": "densities",
    "discretized_logistic_log_likelihood": "densities", "gaussian_log_likelihood": "densities",
    "kl_to_standard_normal": "densities", "log_normal_mixture": "densities", "log_normal_pdf": "densities",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ops' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"ops.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
