"""FastEstimator TensorOps that make up the CVAE op graph, one op per module.

x (uint8) -> Rescale -> Binarize -> [encoder] -> SplitOp -> ReparameterizeOp -> [decoder] -> CVAELoss
"""
from ops.analytic_kl_loss import AnalyticKLLoss
from ops.binarize import Binarize
from ops.cvae_loss import CVAELoss
from ops.densities import bernoulli_log_likelihood, kl_to_standard_normal, log_normal_pdf
from ops.reparameterize import ReparameterizeOp
from ops.rescale import Rescale
from ops.split import SplitOp

__all__ = ["AnalyticKLLoss", "Binarize", "CVAELoss", "ReparameterizeOp", "Rescale", "SplitOp",
           "bernoulli_log_likelihood", "kl_to_standard_normal", "log_normal_pdf"]
