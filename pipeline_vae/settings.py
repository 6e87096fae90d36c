"""Every run setting once: its default, what it accepts and its help text. The library (`get_estimator`), the CLI
(`pipeline-vae train` flags), ablation specs (`base` / `set`) and the apphub script all take their defaults and
their validation from `SETTINGS`, so a setting is added, checked or documented in one place.

This module imports no TensorFlow, so the CLI can refuse a bad flag at once. The names of models and losses are
listed here as plain strings, the likelihoods' in `ops.names`; the tests check they match the registries
(`models.MODELS`, `slots.LOSSES`, `ops.densities.LIKELIHOODS`). The defaults that follow the data (likelihood,
binarization) are applied in one place, `pipeline_vae.resolve`.
"""
import argparse
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ops.names import LIKELIHOOD_NAMES

MODEL_NAMES: Tuple[str, ...] = ("conv", "mlp", "mlp_tanh")
LOSS_NAMES: Tuple[str, ...] = ("analytic_kl", "mc_kl")
LR_SCHEDULES: Tuple[str, ...] = ("cosine", )
#: How a run's MNIST is binarized and its models selected: "seed" (the tutorial's: cut at 0.5, chosen by test ELBO)
#: or "dynamic_mnist" (the VAE literature's; see `pipeline_vae.resolve.PROTOCOLS`).
PROTOCOL_NAMES: Tuple[str, ...] = ("seed", "dynamic_mnist")
#: The priors p(z) a run can name (`pipeline_vae.slots.PRIORS` builds them).
PRIOR_NAMES: Tuple[str, ...] = ("standard_normal", "mixture", "vamp", "hierarchical")
#: The posterior flows a run can name.
FLOW_NAMES: Tuple[str, ...] = ("none", "planar")


def _int(minimum: int, allow_none: bool = False) -> Callable[[Any], bool]:
    return lambda v: (allow_none and v is None) or (isinstance(v, int) and not isinstance(v, bool) and v >= minimum)


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1


def _choice(names: Tuple[str, ...], allow_none: bool = False) -> Callable[[Any], bool]:
    return lambda v: (allow_none and v is None) or (isinstance(v, str) and v in names)


def _int_list(length: Optional[int] = None, allow_none: bool = True) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if v is None:
            return allow_none
        return isinstance(v, (list, tuple)) and len(v) >= 1 and (length is None or len(v) == length) and all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in v)

    return check


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _threshold(v: Any) -> bool:
    return v is None or _fraction(v)


@dataclass(frozen=True)
class Setting:
    """One run setting.

    Args:
        default: The value when none is given.
        check: value -> whether it is acceptable.
        expected: What `check` accepts, for messages ("a positive integer").
        help: One line for `--help` and the docs.
    """
    default: Any
    check: Callable[[Any], bool]
    expected: str
    help: str


SETTINGS: Dict[str, Setting] = {
    # the budget
    "epochs": Setting(5, _int(1), "a positive integer", "training epochs"),
    "batch_size": Setting(100, _int(1), "a positive integer", "examples per batch (train and eval; with several "
                          "GPUs the global batch, which FastEstimator splits evenly across them)"),
    "train_steps_per_epoch": Setting(None, _int(1, True), "a positive integer or None",
                                     "cap on training steps per epoch (default: the whole training set)"),
    "eval_steps_per_epoch": Setting(None, _int(1, True), "a positive integer or None",
                                    "cap on eval steps per epoch (default: the whole test set)"),
    # the evaluation (`pipeline-vae evaluate`, an ablation spec's `eval`)
    "iw_samples": Setting(100, _int(0), "a non-negative integer",
                          "samples per image K of the importance-weighted bound (0 skips it); the default takes "
                          "minutes on a 2-core CPU (a 64x64 RGB run's 2000 test images took about 1.5 h at K = 1000), "
                          "the published bounds say their K"),
    "n_images": Setting(None, _int(1, True), "a positive integer or None",
                        "evaluate the first N test images (default: the whole test split)"),
    # the model
    "latent_dim": Setting(2, _int(1), "a positive integer", "size of z"),
    "learning_rate": Setting(1e-3, _positive_number, "a positive number", "Adam's learning rate"),
    "model": Setting("conv", _choice(MODEL_NAMES), f"one of {', '.join(MODEL_NAMES)}",
                     "encoder/decoder family: the seed's convolutional pair, the Keras examples' relu MLP pair, or "
                     "the VAE papers' tanh MLP pair (Burda et al. 2016: 200-200 hidden units)"),
    "widths": Setting(None, _int_list(), "None or a list of positive integers such as 512,256",
                      "layer widths, encoder side first (conv: one stride-2 convolution per filter count, default "
                      "32,64; mlp: hidden sizes, default 512,256; mlp_tanh: default 200,200); the decoder mirrors "
                      "them"),
    "loss": Setting("analytic_kl", _choice(LOSS_NAMES), f"one of {', '.join(LOSS_NAMES)}",
                    "KL term of the loss: closed form (analytic_kl) or the seed's one-sample Monte Carlo estimate "
                    "(mc_kl)"),
    "kl_warmup": Setting(None, _int(1, True), "a positive integer or None",
                         "KL warm-up: the KL term's weight rises linearly from 0 to 1 over this many epochs "
                         "(KLWarmupLoss, closed-form KL; Bowman et al. 2016, Sønderby et al. 2016), as learned priors "
                         "and hierarchical latents need; default: none"),
    "prior": Setting("standard_normal", _choice(PRIOR_NAMES), f"one of {', '.join(PRIOR_NAMES)}",
                     "the prior p(z): standard_normal (the seed's), mixture (a learned mixture of prior_components "
                     "Gaussians) or vamp (the VampPrior: the mixture of the encoder's posteriors at prior_components "
                     "learned pseudo-inputs, Tomczak & Welling 2018) or hierarchical (a second stochastic layer z2 of "
                     "upper_latent_dim units above z: Burda et al. 2016's two-layer model)"),
    "upper_latent_dim": Setting(50, _int(1), "a positive integer",
                                "size of z2 with prior hierarchical (Burda et al.'s 50; its layers: two of that many "
                                "tanh units each way)"),
    "prior_components": Setting(500, _int(1), "a positive integer",
                                "mixture components (mixture) or pseudo-inputs (vamp) of a learned prior (the "
                                "VampPrior paper's 500 for MNIST)"),
    "flow": Setting("none", _choice(FLOW_NAMES), f"one of {', '.join(FLOW_NAMES)}",
                    "a normalizing flow on the posterior sample: none (the seed's diagonal Gaussian) or planar "
                    "(flow_steps planar steps, Rezende & Mohamed 2015); its log-determinant enters the loss and bounds"),
    "flow_steps": Setting(10, _int(1), "a positive integer", "steps of the posterior flow"),
    "likelihood": Setting(None, _choice(LIKELIHOOD_NAMES, True), f"None or one of {', '.join(LIKELIHOOD_NAMES)}",
                          "decoder likelihood: bernoulli, gaussian or discretized_logistic (default: follows the data "
                          "- bernoulli for MNIST and black-and-white images, discretized_logistic for other images)"),
    "binarize_threshold": Setting(None, _threshold, "None or a number between 0 and 1",
                                  "cut images at this grey level (0..1) for training (default: 0.5 for MNIST with the "
                                  "Bernoulli likelihood, else no cut; drop the 'binarize' slot to never cut)"),
    # the data
    "image_size": Setting(None, _int_list(2), "None or two positive integers (height, width)",
                          "resize every image of a folder to H x W"),
    "channels": Setting(None, lambda v: v in (None, 1, 3) and not isinstance(v, bool), "None (follow the data), 1 (grey) or 3 (RGB)",
                        "convert images to 1 (grey) or 3 (RGB) channels (default: follow the data)"),
    "test_fraction": Setting(0.1, _fraction, "a number between 0 and 1",
                             "share of the images held out for testing when the data has no test split"),
    "split_seed": Setting(0, _int(0), "a non-negative integer", "seed of that train/test split (and of the "
                          "validation split)"),
    "validation_fraction": Setting(None, lambda v: v is None or _fraction(v), "None or a number between 0 and 1",
                                   "hold out this share of the training images as a validation split: the best "
                                   "models are chosen, and early stopping decides, on it instead of the test split"),
    "protocol": Setting("seed", _choice(PROTOCOL_NAMES), f"one of {', '.join(PROTOCOL_NAMES)}",
                        "seed: MNIST cut at 0.5, models chosen by test ELBO (the tutorial's); dynamic_mnist: the "
                        "literature's dynamically binarized MNIST (a fresh Bernoulli draw of every training image at "
                        "every step, 10000 training images held out for validation, validation and test images "
                        "binarized once by a seeded draw, IW bound at K = 5000)"),
    # the run
    "seed": Setting(None, _int(0, True), "a non-negative integer or None",
                    "make the run deterministic with this seed (fe.enable_deterministic)"),
    "lr_schedule": Setting(None, _choice(LR_SCHEDULES, True), f"None or one of {', '.join(LR_SCHEDULES)}",
                           "learning-rate schedule: cosine decays Adam's rate each epoch from the learning rate to a "
                           "hundredth of it at the last epoch (FE's cosine_decay); default: constant"),
    "early_stop": Setting(None, _int(1, True), "a positive integer or None",
                          "stop after this many epochs without a better test ELBO (FE EarlyStopping)"),
    "lr_plateau": Setting(None, _int(1, True), "a positive integer or None",
                          "divide the learning rate by 10 after this many epochs without a better test ELBO"),
    "log_steps": Setting(100, _int(0, True), "a non-negative integer or None",
                         "print the training loss every N steps (0: per-epoch lines only; None: silent)"),
    "tensorboard": Setting(False, _bool, "True or False", "also write TensorBoard event files"),
    "mixed_precision": Setting(False, _bool, "True or False",
                               "mixed precision (FE's fe.build(mixed_precision=True): float16 compute, float32 weights "
                               "and model outputs, losses in float32, dynamic loss scaling); for GPUs"),
    "jit": Setting(False, _bool, "True or False", "compile the training step with XLA (TensorFlow's auto-clustering)"),
    "resume": Setting(False, _bool, "True or False", "checkpoint every epoch and resume from the last checkpoint"),
}

#: The settings an ablation spec's `base` and a variant's `set` may give (the budget has its own section).
SPEC_SETTINGS: Tuple[str, ...] = ("latent_dim", "batch_size", "learning_rate", "lr_schedule", "model", "widths",
                                  "loss", "kl_warmup", "likelihood", "binarize_threshold", "protocol", "prior",
                                  "prior_components", "upper_latent_dim", "flow", "flow_steps")


def check(name: str, value: Any) -> Any:
    """Return `value` if it is acceptable for setting `name`.

    Raises:
        ValueError: "NAME must be EXPECTED, got VALUE" (or that the setting is unknown).
    """
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; expected one of {', '.join(SETTINGS)}")
    setting = SETTINGS[name]
    if not setting.check(value):
        raise ValueError(f"{name} must be {setting.expected}, got {value!r}")
    return value


def check_all(values: Mapping[str, Any]) -> Dict[str, Any]:
    """`check` every item; returns them as a dict."""
    return {name: check(name, value) for name, value in values.items()}


def default(name: str) -> Any:
    """The default of setting `name`."""
    return SETTINGS[name].default


def cli_type(name: str, parse: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """An argparse `type=` that parses the flag's text with `parse` and checks it as setting `name`."""
    setting = SETTINGS[name]

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {setting.expected.replace('None or ', '')}, got "
                                             f"{text!r}") from None
        if not setting.check(value):  # (a flag's value is never None: that is the flag left out)
            raise argparse.ArgumentTypeError(f"expected {setting.expected.replace('None or ', '')}, got {text!r}")
        return value

    return convert


def int_list(text: str) -> list:
    """Parse "512,256" into [512, 256]."""
    return [int(part) for part in text.split(",")]
