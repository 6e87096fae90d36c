"""One way into a run: raw settings from any entrance, plus the data, resolved into one frozen, checked `RunConfig`.

    config, data = resolve({"latent_dim": 50, "likelihood": None}, data="my_images/")
    config.likelihood, config.binarize_threshold, config.image_shape, config.train_steps_per_epoch

`get_estimator` (and through it the CLI's `train`, the apphub scripts, `fastestimator train`, the presets and every
ablation trial) calls `resolve` and then builds only from the `RunConfig` it returns. Every default is applied here,
once: the settings' own (`pipeline_vae.settings`), and those that follow the data (`default_likelihood`,
`default_binarize_threshold`). Nothing downstream decides them again.

`PIPELINE_VAE_TINY=1` in the environment caps every run at a tiny budget (`TINY_BUDGET`: one epoch of at most two
training and two evaluation steps, an IW bound of K <= 2 on at most 20 images), said on stderr when it applies and
recorded in the run's configuration. It is for trying the docs' commands quickly; the test suite runs every command
and Python block of README.md, docs/usage.md and docs/own-data.md with it (tests/test_docs_run.py).
"""
import os
import sys
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ops.names import DEFAULT_LIKELIHOOD, GREY_LEVEL_LIKELIHOOD
from pipeline_vae import settings
from pipeline_vae.data import MNIST, DataSource, ImageData, load_data
from pipeline_vae.model_shapes import check_family
from pipeline_vae.run_config import MNIST_BINARIZE_THRESHOLD, RUN_ONLY, RunConfig

DataArg = Union[None, str, DataSource, ImageData, MNIST]
#: The settings that describe how the data is read; they go with data given by name or path.
DATA_SETTINGS = ("image_size", "channels", "test_fraction", "split_seed", "validation_fraction")
#: The protocols a run can name (`protocol`), beside the tutorial's "seed". "dynamic_mnist" is the VAE literature's
#: dynamically binarized MNIST (Burda et al. 2016, IWAE, Section 5; Tomczak & Welling 2018, VampPrior): training
#: images binarized afresh at every step (`ops.DynamicBinarize`), a validation split of the training images for
#: choosing the best models and early stopping, validation and test images binarized once by a seeded Bernoulli
#: draw (`pipeline_vae.data.sources.fix_binarization`), and the IW bound at K = 5000.
PROTOCOLS = {"dynamic_mnist": {"validation_fraction": 1 / 6, "fixed_binarization": 0, "iw_samples": 5000}}
#: The environment variable that caps every run's budget, and the caps (a setting at None, "all", gets the cap).
TINY_ENV = "PIPELINE_VAE_TINY"
TINY_BUDGET = {"epochs": 1, "train_steps_per_epoch": 2, "eval_steps_per_epoch": 2, "iw_samples": 2, "n_images": 20}


def tiny_budget(values: Mapping[str, Any]) -> Dict[str, Any]:
    """`values` with the budget settings among them capped at `TINY_BUDGET` when `PIPELINE_VAE_TINY=1` (said on
    stderr); unchanged otherwise.

    Raises:
        ValueError: If the variable is set to anything but 0 or 1.
    """
    flag = os.environ.get(TINY_ENV, "0")
    if flag not in ("0", "1"):
        raise ValueError(f"{TINY_ENV} must be 0 or 1, got {flag!r}")
    out = dict(values)
    if flag == "0":
        return out
    capped = []
    for name, cap in TINY_BUDGET.items():
        if name in out and (out[name] is None or out[name] > cap):
            out[name] = cap
            capped.append(f"{name}={cap}")
    if capped:
        print(f"pipeline-vae: {TINY_ENV}=1: {', '.join(capped)}", file=sys.stderr)
    return out


def default_likelihood(data: ImageData) -> str:
    """The likelihood that fits the data: the Bernoulli (`DEFAULT_LIKELIHOOD`) for MNIST and black-and-white
    images, the discretized logistic over 256 levels for other 8-bit images."""
    return DEFAULT_LIKELIHOOD if data.kind == "mnist" or data.binary else GREY_LEVEL_LIKELIHOOD


def default_binarize_threshold(data: ImageData, likelihood: str) -> Optional[float]:
    """MNIST under the Bernoulli likelihood is cut at 0.5 (the seed's); other data is not binarized by default."""
    return MNIST_BINARIZE_THRESHOLD if data.kind == "mnist" and likelihood == DEFAULT_LIKELIHOOD else None


def _source(values: Mapping[str, Any], data: DataArg) -> Union[DataSource, ImageData, MNIST]:
    """What `load_data` reads: data given by name or path becomes a DataSource with the data settings; a DataSource,
    ImageData or MNIST carries its own, so those settings must be left at their defaults."""
    if isinstance(data, (str, type(None))):
        return DataSource(data="mnist" if data is None else data,
                          image_size=None if values["image_size"] is None else tuple(values["image_size"]),
                          channels=values["channels"], test_fraction=values["test_fraction"],
                          split_seed=values["split_seed"], validation_fraction=values["validation_fraction"])
    if any(values[name] != settings.default(name) for name in DATA_SETTINGS):
        raise ValueError(f"{', '.join(DATA_SETTINGS[:-1])} and {DATA_SETTINGS[-1]} go with data given by name or "
                         f"path; a {type(data).__name__} carries its own")
    return data


def resolve(raw: Optional[Mapping[str, Any]] = None, data: DataArg = None,
            ops: Optional[Mapping[str, Any]] = None) -> Tuple[RunConfig, ImageData]:
    """Settle a run's settings: check every raw setting, apply every default once, read the data.

    Args:
        raw: Setting name -> value, as an entrance got them (keyword arguments, CLI flags, a spec's `base` + `set`,
            a preset); a setting left out, or None where None means "the default", takes its default.
        data: What `pipeline_vae.data.load_data` reads: None or "mnist", a Keras set name, an `.npz` or folder path,
            a `DataSource`, an `ImageData` or an `MNIST`.
        ops: The slot overrides the run will use (`pipeline_vae.slots`): a `binarize` slot given here decides the
            recorded threshold (its `Binarize` op's, else none), and a `loss` slot replaces the loss chosen by name.

    Returns:
        The RunConfig (without `slots`, which the graph builder records from the graph it builds) and the data.

    Raises:
        ValueError: Naming the first unknown or invalid setting, a combination that cannot run, or data that cannot
            be read (`DataError`).
    """
    raw = dict(raw or {})
    unknown = [name for name in raw if name not in settings.SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))}; expected one of "
                         f"{', '.join(settings.SETTINGS)}")
    values = {name: raw.get(name, setting.default) for name, setting in settings.SETTINGS.items()}
    settings.check_all(values)
    if values["lr_schedule"] is not None and values["lr_plateau"] is not None:
        raise ValueError("lr_schedule and lr_plateau both set the learning rate; give one of them")
    if values["protocol"] in PROTOCOLS and "iw_samples" not in raw:
        values["iw_samples"] = PROTOCOLS[values["protocol"]]["iw_samples"]
    values = tiny_budget(values)
    images = apply_protocol(load_data(_source(values, data), fetch=False), values["protocol"])
    likelihood = values["likelihood"] or default_likelihood(images)
    if values["protocol"] != "seed" and likelihood != DEFAULT_LIKELIHOOD:
        raise ValueError(f"protocol {values['protocol']} scores binary images: it needs the {DEFAULT_LIKELIHOOD} "
                         f"likelihood, got {likelihood}")
    threshold = values["binarize_threshold"]
    if ops is not None and "binarize" in ops:  # the slot's own op decides (Binarize: its threshold)
        threshold = _threshold_of(ops["binarize"])
    elif threshold is None:
        threshold = default_binarize_threshold(images, likelihood)
    loss = None if ops is not None and "loss" in ops else values["loss"]
    if values["kl_warmup"] is not None and loss is None:
        raise ValueError("kl_warmup: the run's loss slot is set directly; give either kl_warmup or a loss op (e.g. "
                         "KLWarmupLoss), not both")
    if values["kl_warmup"] is not None and loss != "analytic_kl":
        raise ValueError(f"kl_warmup: warm-up weighs the closed-form KL; it needs loss analytic_kl, got {loss}")
    widths = values["widths"]
    if not (ops is not None and ("encode" in ops or "decode" in ops)):  # the family's models: do they fit the data?
        check_family(values["model"], values["latent_dim"], widths, images.image_shape)
    config = RunConfig(data=images.source, data_description=images.summary(), image_shape=images.image_shape,
                       labels=images.has_labels, likelihood=likelihood, binarize_threshold=threshold,
                       latent_dim=values["latent_dim"], model=values["model"],
                       widths=None if widths is None else tuple(widths), learning_rate=values["learning_rate"],
                       lr_schedule=values["lr_schedule"], batch_size=values["batch_size"], epochs=values["epochs"],
                       seed=values["seed"], loss=loss, kl_warmup=values["kl_warmup"],
                       mixed_precision=values["mixed_precision"], jit=values["jit"],
                       protocol=values["protocol"], prior=values["prior"],
                       prior_components=values["prior_components"],
                       upper_latent_dim=values["upper_latent_dim"], flow=values["flow"],
                       flow_steps=values["flow_steps"], **{name: values[name] for name in RUN_ONLY})
    return config, images


def apply_protocol(images: ImageData, protocol: str) -> ImageData:
    """The data a run under `protocol` trains and is evaluated on: for "dynamic_mnist", MNIST with a validation split
    (the source's `validation_fraction`, else 1/6: 10000 of the 60000 training images) and its validation and test
    images binarized once by the seeded draw; unchanged for "seed". Data already read that way is returned as is.

    Raises:
        ValueError: If the protocol needs MNIST and the data is not, or the images are not in memory.
    """
    if protocol == "seed":
        return images
    if images.kind != "mnist":
        raise ValueError(f"protocol {protocol} is MNIST's (the papers' numbers are on it); {images.description} is "
                         "not MNIST: use --validation-fraction for a validation split on other data")
    from pipeline_vae.data.sources import fix_binarization, hold_out_validation
    defaults = PROTOCOLS[protocol]
    source = images.source
    if images.validation is None:
        source = replace(source, validation_fraction=source.validation_fraction or defaults["validation_fraction"])
        images = hold_out_validation(replace(images, source=source))
    if source.fixed_binarization is None:
        source = replace(source, fixed_binarization=defaults["fixed_binarization"])
        images = fix_binarization(replace(images, source=source), source.fixed_binarization)
    return images

def _threshold_of(value: Any) -> Optional[float]:
    from ops import Binarize
    ops = value if isinstance(value, (list, tuple)) else [value]
    return next((op.threshold for op in ops if isinstance(op, Binarize)), None)
