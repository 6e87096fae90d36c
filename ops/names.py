"""The likelihoods' names and the default one, without TensorFlow: what settings, run configurations and the CLI
read before TensorFlow is imported (`ops.densities.LIKELIHOODS` holds their math under the same names).

    from ops.names import DEFAULT_LIKELIHOOD, LIKELIHOOD_NAMES
"""
from typing import Tuple

#: Every decoder likelihood, by name.
LIKELIHOOD_NAMES: Tuple[str, ...] = ("bernoulli", "gaussian", "discretized_logistic")
#: The seed's likelihood, for black-and-white (binarized) images: a loss op used on its own, MNIST, and run folders
#: written before configurations recorded one. The one place this default is written.
DEFAULT_LIKELIHOOD: str = "bernoulli"
#: The likelihood of 8-bit grey or colour images (256 levels) when nothing else is said.
GREY_LEVEL_LIKELIHOOD: str = "discretized_logistic"
