"""The CVAE op graph as named slots, so an ablation replaces or drops one slot with no other code change.

    rescale -> binarize -> encode -> split -> reparameterize -> flow -> decode -> prior -> loss   (then UpdateOps)

`build_graph(..., ops={"loss": MyLoss(...), "binarize": None})` swaps the loss and drops the binarization. A slot
takes one TensorOp, a list of TensorOps (expanding the slot), or None (dropping it). Every key an op reads must be
produced upstream (by the Pipeline or an earlier slot) in each mode the op runs in; otherwise a ValueError names the
slot and the missing key before anything is trained.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import fastestimator as fe
import tensorflow as tf
from fastestimator.op.tensorop.model import ModelOp, UpdateOp
from fastestimator.op.tensorop.tensorop import TensorOp

from ops import (AnalyticKLLoss, Binarize, CVAELoss, DynamicBinarize, HierarchicalPrior, JointGradientOp,
                 KLWarmupLoss, MixturePrior, PlanarFlow, ReparameterizeOp, Rescale, SplitOp, StandardNormalPrior,
                 VampPrior)
from ops.densities import get_likelihood
from ops.names import DEFAULT_LIKELIHOOD
from pipeline_vae import settings as run_settings
from pipeline_vae.models import (DEFAULT_MODEL, IMAGE_SHAPE, MODELS, build_hierarchical_prior, build_mixture_prior,
                                 build_planar_flow, build_pseudo_inputs)
from pipeline_vae.run_config import MNIST_BINARIZE_THRESHOLD, RunConfig

SLOTS: Tuple[str, ...] = ("rescale", "binarize", "encode", "split", "reparameterize", "flow", "decode", "prior",
                          "loss")
#: What the default Pipeline provides: uint8 images.
PIPELINE_KEYS: Tuple[str, ...] = ("x", )
#: The modes the graph is checked in (the modes `get_estimator` runs).
CHECKED_MODES: Tuple[str, ...] = ("train", "eval")
SlotValue = Union[None, TensorOp, Sequence[TensorOp]]


@dataclass(frozen=True)
class ModelSettings:
    """What the default slots are built from.

    Args:
        latent_dim: Size of z.
        learning_rate: Adam's learning rate.
        model: The model family in `pipeline_vae.models.MODELS`.
        widths: The family's layer widths (None: its default).
        image_shape: (H, W, C) of the images.
        likelihood: The decoder likelihood (`ops.densities.LIKELIHOODS`): the decoder outputs its parameters.
        binarize_threshold: The `binarize` slot's threshold; None leaves that slot empty.
        mixed_precision: Build the models with FE's mixed precision (float16 compute, float32 outputs).
        dynamic_binarization: The `binarize` slot draws every training image afresh (`DynamicBinarize`, cutting at
            `binarize_threshold` outside training) instead of cutting it at `binarize_threshold`.
        prior: The prior p(z) (`pipeline_vae.settings.PRIOR_NAMES`): "standard_normal" leaves the `prior` slot empty
            (the losses' own N(0, I)); "mixture" and "vamp" put a `MixturePrior` or `VampPrior` there, with a model
            of their parameters.
        prior_components: Its mixture components or pseudo-inputs.
        upper_latent_dim: The size of z2 for prior "hierarchical".
        flow: The posterior flow: "none" leaves the `flow` slot empty; "planar" puts a `PlanarFlow` there.
        flow_steps: Its steps.
    """
    latent_dim: int = run_settings.default("latent_dim")
    learning_rate: float = run_settings.default("learning_rate")
    model: str = DEFAULT_MODEL
    widths: Optional[Tuple[int, ...]] = None
    image_shape: Tuple[int, int, int] = IMAGE_SHAPE
    likelihood: str = DEFAULT_LIKELIHOOD
    binarize_threshold: Optional[float] = MNIST_BINARIZE_THRESHOLD
    mixed_precision: bool = False
    dynamic_binarization: bool = False
    prior: str = run_settings.default("prior")
    prior_components: int = run_settings.default("prior_components")
    upper_latent_dim: int = run_settings.default("upper_latent_dim")
    flow: str = run_settings.default("flow")
    flow_steps: int = run_settings.default("flow_steps")


def float32_output(model: tf.keras.Model) -> tf.keras.Model:
    """`model` with a float32 linear activation on its output (the Keras mixed-precision guide's advice), so that
    under the mixed_float16 policy the losses and everything downstream stay in float32."""
    out = tf.keras.layers.Activation("linear", dtype="float32", name="float32_output")(model.output)
    return tf.keras.Model(model.input, out, name=model.name)


def make_model(kind: str, settings: ModelSettings) -> tf.keras.Model:
    """The plain Keras model of `kind` that `settings` describe (no optimizer): "encoder", "decoder", or the
    parameters of a learned "prior" or a posterior "flow". What `build_model` compiles, and what
    `pipeline_vae.model_files` rebuilds to read a saved model's weights into. Call it under the dtype policy the
    models train with (`fe.build` sets mixed_float16 for mixed precision).

    Raises:
        KeyError: If the model family is unknown (`build_model` checks names first).
    """
    if kind == "flow":
        model = build_planar_flow(settings.flow_steps, settings.latent_dim)
        return float32_output(model) if settings.mixed_precision else model
    if kind == "prior" and settings.prior == "hierarchical":  # two outputs: the op casts them to float32
        return build_hierarchical_prior(settings.latent_dim, settings.upper_latent_dim)
    if kind == "prior":
        model = (build_mixture_prior(settings.prior_components, settings.latent_dim) if settings.prior == "mixture"
                 else build_pseudo_inputs(settings.prior_components, settings.image_shape))
        return float32_output(model) if settings.mixed_precision else model
    family = MODELS[settings.model]
    widths = settings.widths or family.widths
    if kind == "encoder":
        model = family.encoder(settings.latent_dim, widths, settings.image_shape)
    else:
        out_channels = settings.image_shape[2] * get_likelihood(settings.likelihood).params
        model = family.decoder(settings.latent_dim, widths, settings.image_shape, out_channels)
    return float32_output(model) if settings.mixed_precision else model


def model_settings(config: RunConfig) -> ModelSettings:
    """The default models' settings of a run, from its configuration."""
    return ModelSettings(config.latent_dim, config.learning_rate, config.model, config.widths,
                         tuple(config.image_shape), config.likelihood, config.binarize_threshold,
                         config.mixed_precision, config.protocol == "dynamic_mnist", config.prior,
                         config.prior_components, config.upper_latent_dim, config.flow, config.flow_steps)


def build_model(kind: str, settings: ModelSettings) -> tf.keras.Model:
    """`fe.build` an encoder or decoder with Adam, named so the best-model file is `<kind>_best_loss.h5`.

    Args:
        kind: "encoder" or "decoder".
        settings: Latent size, learning rate, model family and widths, image shape and likelihood (the decoder
            outputs `params` values per image channel), and mixed precision.

    Returns:
        The compiled Keras model (FE's `fe.build` result).

    Raises:
        ValueError: If `kind`, the model or the likelihood is unknown, or a setting is invalid for the images.
    """
    if kind not in ("encoder", "decoder", "prior", "flow"):
        raise ValueError(f"kind must be 'encoder', 'decoder', 'prior' or 'flow', got {kind!r}")
    if settings.model not in MODELS:
        raise ValueError(f"unknown model {settings.model!r}; expected one of {', '.join(sorted(MODELS))}")
    lr = run_settings.check("learning_rate", settings.learning_rate)
    family = MODELS[settings.model]

    def make() -> tf.keras.Model:
        return make_model(kind, settings)

    def adam() -> tf.keras.optimizers.legacy.Optimizer:  # a named function: FE's traceability cannot parse a lambda
        return tf.keras.optimizers.legacy.Adam(learning_rate=lr)  # inside a Ray worker (TypeError: unhashable HrefFEID)

    family.check(settings.latent_dim, settings.widths, settings.image_shape)  # a clean error outside fe.build
    return fe.build(model_fn=make, optimizer_fn=adam, model_name=kind, mixed_precision=settings.mixed_precision)


#: The loss ops selectable by name (`get_estimator(loss=...)`, `pipeline-vae train --loss ...`).
LOSSES: Dict[str, Callable[..., TensorOp]] = {"mc_kl": CVAELoss, "analytic_kl": AnalyticKLLoss}
DEFAULT_LOSS = "analytic_kl"

#: How each slot's default op is made from the ModelSettings (None: the slot is empty). Models are built only if their
#: slot is used. The "loss" slot's default comes from `LOSSES` (see `build_graph`).
DEFAULT_OPS: Dict[str, Callable[[ModelSettings], Optional[TensorOp]]] = {
    "rescale": lambda s: Rescale(inputs="x", outputs="x"),
    "binarize": lambda s: (None if s.binarize_threshold is None else
                           DynamicBinarize(inputs="x", outputs="x", eval_threshold=s.binarize_threshold)
                           if s.dynamic_binarization else
                           Binarize(inputs="x", outputs="x", threshold=s.binarize_threshold)),
    "encode": lambda s: ModelOp(model=build_model("encoder", s), inputs="x", outputs="meanlogvar"),
    "split": lambda s: SplitOp(inputs="meanlogvar", outputs=("mean", "logvar")),
    "reparameterize": lambda s: ReparameterizeOp(inputs=("mean", "logvar"), outputs="z"),
    "flow": lambda s: None if s.flow == "none" else flow_op(s, build_model("flow", s)),
    "decode": lambda s: ModelOp(model=build_model("decoder", s), inputs="z", outputs="x_logit"),
    "prior": lambda s: None if s.prior == "standard_normal" else prior_op(s, build_model("prior", s)),
}


def flow_op(settings: ModelSettings, model: tf.keras.Model) -> TensorOp:
    """The `flow` slot's op for `settings.flow` over `model` (its parameters, trained or loaded): (mean, logvar, z)
    -> (z, log_qz)."""
    return PlanarFlow(model, settings.flow_steps, inputs=("mean", "logvar", "z"), outputs=("z", "log_qz"))


def prior_op(settings: ModelSettings, model: Optional[tf.keras.Model] = None,
             encoder: Optional[tf.keras.Model] = None) -> TensorOp:
    """The `prior` slot's op for `settings.prior` (z -> log_pz): `StandardNormalPrior`, or a `MixturePrior` /
    `VampPrior` / `HierarchicalPrior` over `model` (its parameters: `make_model("prior", settings)`, trained or
    loaded), the VampPrior with
    `encoder` (None: `build_graph` binds the encode slot's). What training runs and what evaluation loads."""
    if settings.prior == "standard_normal":
        return StandardNormalPrior(inputs="z", outputs="log_pz")
    if settings.prior == "mixture":
        return MixturePrior(model, settings.prior_components, inputs="z", outputs="log_pz")
    if settings.prior == "hierarchical":
        return HierarchicalPrior(model, settings.upper_latent_dim, inputs="z", outputs="log_pz")
    return VampPrior(model, settings.prior_components, settings.image_shape, encoder=encoder, inputs="z",
                     outputs="log_pz")


#: The slots that turn the Pipeline's uint8 images into what the encoder sees (and the loss scores).
PREPROCESSING_SLOTS: Tuple[str, ...] = ("rescale", "binarize")


def preprocessing_ops(binarize_threshold: Optional[float]) -> List[TensorOp]:
    """The default `rescale` and `binarize` slots' ops for a run cut at `binarize_threshold` (None: not cut): what
    the run's graph does to images before encoding, for evaluation and inference to run as training did."""
    settings = ModelSettings(binarize_threshold=binarize_threshold)
    return [op for op in (DEFAULT_OPS[name](settings) for name in PREPROCESSING_SLOTS) if op is not None]


@dataclass
class Graph:
    """The assembled op graph.

    Args:
        named_ops: (slot name, op) in execution order, UpdateOps last (slot name "update").
        models: The models the graph runs, in order of first use (each gets an UpdateOp and a best-model file).
        loss_key: The key the UpdateOps minimise (the first output of the last op in the "loss" slot).
    """
    named_ops: List[Tuple[str, TensorOp]]
    models: List[tf.keras.Model]
    loss_key: str

    @property
    def ops(self) -> List[TensorOp]:
        """The ops in execution order, ready for `fe.Network`."""
        return [op for _, op in self.named_ops]

    @property
    def decoder(self) -> Optional[tf.keras.Model]:
        """The model of the "decode" slot's ModelOp (None if that slot holds no ModelOp)."""
        models = [op.model for name, op in self.named_ops if name == "decode" and isinstance(op, ModelOp)]
        return models[-1] if models else None

    @property
    def flow(self) -> Optional[TensorOp]:
        """The "flow" slot's op (None if the slot is empty)."""
        flows = [op for name, op in self.named_ops if name == "flow"]
        return flows[-1] if flows else None

    @property
    def prior(self) -> Optional[TensorOp]:
        """The "prior" slot's op (None if the slot is empty: the standard normal)."""
        priors = [op for name, op in self.named_ops if name == "prior"]
        return priors[-1] if priors else None

    def describe(self) -> Dict[str, List[str]]:
        """Slot name -> class names of its ops (for the run's config file and messages)."""
        out: Dict[str, List[str]] = {}
        for name, op in self.named_ops:
            out.setdefault(name, []).append(type(op).__name__)
        return out


def check_slot_names(ops: Mapping[str, SlotValue]) -> None:
    """Raise if `ops` names a slot that does not exist.

    Raises:
        ValueError: Naming the unknown slot(s) and listing the valid ones.
    """
    unknown = [name for name in ops if name not in SLOTS]
    if unknown:
        raise ValueError(f"unknown slot name(s) {', '.join(map(repr, unknown))} in ops; valid slots are "
                         f"{', '.join(SLOTS)}")


def slot_ops(name: str, value: SlotValue) -> List[TensorOp]:
    """The ops of one slot as a list, checking their type."""
    if value is None:
        return []
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for op in values:
        if not isinstance(op, TensorOp):
            hint = " (NumpyOps belong in the Pipeline)" if isinstance(op, fe.op.numpyop.NumpyOp) else ""
            raise TypeError(f"slot '{name}': expected a FastEstimator TensorOp, a list of them, or None, got "
                            f"{type(op).__name__}{hint}")
    return values


def _runs_in(op: TensorOp, mode: str) -> bool:
    return not op.mode or mode in op.mode


def check_graph(named_ops: Iterable[Tuple[str, TensorOp]], input_keys: Iterable[str],
                modes: Iterable[str] = CHECKED_MODES) -> None:
    """Check that every op's inputs are produced upstream, in every mode it runs in.

    Args:
        named_ops: (slot name, op) in execution order.
        input_keys: The keys the Pipeline provides.
        modes: The modes to check.

    Raises:
        ValueError: Naming the first slot whose op reads a key nothing upstream produces, the key, and the mode.
    """
    named_ops = list(named_ops)
    for mode in modes:
        available = set(input_keys)
        for name, op in named_ops:
            if not _runs_in(op, mode):
                continue
            missing = [key for key in op.inputs if key not in available]
            if missing:
                raise ValueError(f"slot '{name}' ({type(op).__name__}) needs key '{missing[0]}', which neither the "
                                 f"pipeline nor an earlier slot produces in {mode} mode (available: "
                                 f"{', '.join(sorted(available))})")
            available.update(op.outputs)


def build_graph(latent_dim: int = run_settings.default("latent_dim"),
                learning_rate: float = run_settings.default("learning_rate"),
                ops: Optional[Mapping[str, SlotValue]] = None,
                input_keys: Iterable[str] = PIPELINE_KEYS,
                loss: str = DEFAULT_LOSS,
                kl_warmup: Optional[int] = None,
                model: str = DEFAULT_MODEL,
                widths: Optional[Sequence[int]] = None,
                joint_update: bool = False,
                image_shape: Sequence[int] = IMAGE_SHAPE,
                likelihood: str = DEFAULT_LIKELIHOOD,
                binarize_threshold: Optional[float] = MNIST_BINARIZE_THRESHOLD,
                mixed_precision: bool = False,
                dynamic_binarization: bool = False,
                prior: str = run_settings.default("prior"),
                prior_components: int = run_settings.default("prior_components"),
                upper_latent_dim: int = run_settings.default("upper_latent_dim"),
                flow: str = run_settings.default("flow"),
                flow_steps: int = run_settings.default("flow_steps")) -> Graph:
    """Assemble the slots (defaults, replaced or dropped as `ops` says) plus one UpdateOp per model, and check it.

    Args:
        latent_dim: Size of z for the default encoder/decoder.
        learning_rate: Adam's learning rate for the default encoder/decoder.
        ops: Slot name -> TensorOp, list of TensorOps, or None (drop). Slots not named keep their default.
        input_keys: The keys the Pipeline provides.
        loss: The name of the "loss" slot's op in `LOSSES` ("analytic_kl": AnalyticKLLoss, the default; "mc_kl":
            CVAELoss, the seed's), used unless `ops` sets that slot.
        kl_warmup: With "analytic_kl", the loss is `KLWarmupLoss(warmup_epochs=kl_warmup)` instead: the KL's weight
            rises linearly from 0 over that many epochs. None: no warm-up.
        model: The model family of the default encode/decode slots ("conv", the seed's; "mlp").
        widths: Its layer widths (None: the family's default).
        joint_update: Compute all models' gradients in one backward pass (`ops.JointGradientOp`, then one
            `UpdateOp(gradients=...)` per model) instead of FE's default of one gradient computation per UpdateOp.
            Same gradients; measured a tie on this CPU (docs/benchmarks.md), so off by default.
        image_shape: (H, W, C) of the images the default models are built for.
        likelihood: The decoder likelihood: the default decoder outputs its parameters and the default loss uses it.
            A loss op given in `ops` that was given no likelihood gets this one (`bind_likelihood`); one given
            another is refused.
        binarize_threshold: The default `binarize` slot's threshold (the seed's 0.5); None leaves the slot empty.
        mixed_precision: Build the default models with FE's mixed precision (float32 outputs: see `float32_output`).
            Not with `joint_update` (its single backward pass does not scale the loss).
        dynamic_binarization: The default `binarize` slot is `DynamicBinarize` (a fresh draw of every training image
            at every step; cut at `binarize_threshold` in the other modes), as protocol "dynamic_mnist" trains.
        prior: The default `prior` slot: "standard_normal" (empty: the losses use N(0, I)), "mixture" or "vamp". A
            prior op's output (log p(z)) is given to the loss ops (`bind_prior`), and a `VampPrior` given no encoder
            gets the encode slot's.
        prior_components: Its components or pseudo-inputs.
        upper_latent_dim: The size of z2 for prior "hierarchical".
        flow: The default `flow` slot: "none" (empty) or "planar" (`PlanarFlow`, whose log q(z|x) the loss ops read:
            `bind_posterior`).
        flow_steps: Its steps.

    Returns:
        The checked graph.

    Raises:
        ValueError: If a slot, loss, model or likelihood name is unknown, both `loss` and `ops["loss"]` are given, a
            loss op's likelihood differs from `likelihood`, or an op reads a key nothing upstream produces.
        TypeError: If a slot value is not a TensorOp, a list of them, or None.
    """
    ops = dict(ops or {})
    check_slot_names(ops)
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(sorted(MODELS))}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(sorted(LOSSES))}")
    if "loss" in ops and loss != DEFAULT_LOSS:
        raise ValueError(f"give either loss={loss!r} or ops['loss'], not both")
    if kl_warmup is not None and "loss" in ops:
        raise ValueError("give either kl_warmup or ops['loss'], not both")
    if kl_warmup is not None and loss != "analytic_kl":
        raise ValueError(f"kl_warmup weighs the closed-form KL; it needs loss 'analytic_kl', got {loss!r}")
    get_likelihood(likelihood)
    if mixed_precision and joint_update:
        raise ValueError("mixed_precision and joint_update cannot be combined: JointGradientOp does not scale the loss")
    if "loss" not in ops and kl_warmup is not None:
        ops["loss"] = KLWarmupLoss(inputs=("x", "x_logit", "mean", "logvar", "z"), outputs="loss",
                                   warmup_epochs=kl_warmup, likelihood=likelihood)
    elif "loss" not in ops:
        ops["loss"] = LOSSES[loss](inputs=("x", "x_logit", "mean", "logvar", "z"), outputs="loss",
                                   likelihood=likelihood)
    settings = ModelSettings(latent_dim, learning_rate, model, None if widths is None else tuple(widths),
                             tuple(image_shape), likelihood, binarize_threshold, mixed_precision, dynamic_binarization,
                             prior, prior_components, upper_latent_dim, flow, flow_steps)
    named_ops: List[Tuple[str, TensorOp]] = []
    for name in SLOTS:
        value = ops[name] if name in ops else DEFAULT_OPS[name](settings)
        named_ops.extend((name, op) for op in slot_ops(name, value))
    for name, op in named_ops:
        if name == "loss" and hasattr(op, "bind_likelihood"):
            op.bind_likelihood(likelihood)
        used = getattr(getattr(op, "likelihood", None), "name", likelihood)
        if name == "loss" and used != likelihood:
            raise ValueError(f"slot 'loss' ({type(op).__name__}) uses the {used} likelihood but the run's is "
                             f"{likelihood}; pass likelihood={likelihood!r} to the op")
    _bind_prior(named_ops)
    models: List[tf.keras.Model] = []
    for _, op in named_ops:
        for model in ([op.model] if isinstance(op, ModelOp) else sorted(op.get_fe_models(), key=id)):
            if model not in models:
                models.append(model)
    loss_ops = [op for name, op in named_ops if name == "loss"]
    loss_key = loss_ops[-1].outputs[0] if loss_ops else "loss"
    if joint_update and models:
        keys = [f"gradient_{model.model_name}" for model in models]
        named_ops.append(("update", JointGradientOp(inputs=loss_key, outputs=keys, models=models)))
        named_ops.extend(("update", UpdateOp(model=model, loss_name=loss_key, gradients=key))
                         for model, key in zip(models, keys))
    else:
        named_ops.extend(("update", UpdateOp(model=model, loss_name=loss_key)) for model in models)
    check_graph(named_ops, input_keys)
    return Graph(named_ops=named_ops, models=models, loss_key=loss_key)


def _bind_prior(named_ops: List[Tuple[str, TensorOp]]) -> None:
    """Give the loss ops the `prior` slot's log p(z) key and the `flow` slot's log q(z|x) key, and a VampPrior without
    an encoder the encode slot's."""
    flows = [op for name, op in named_ops if name == "flow" and len(op.outputs) == 2]
    for name, op in named_ops:
        if flows and name == "loss" and hasattr(op, "bind_posterior"):
            op.bind_posterior(flows[-1].outputs[1])
    priors = [op for name, op in named_ops if name == "prior"]
    if not priors:
        return
    encoders = [op.model for name, op in named_ops if name == "encode" and isinstance(op, ModelOp)]
    for op in priors:
        if hasattr(op, "bind_encoder") and encoders:
            op.bind_encoder(encoders[0])
    for name, op in named_ops:
        if name == "loss" and hasattr(op, "bind_prior"):
            op.bind_prior(priors[-1].outputs[0])


def graph_for(config: RunConfig, ops: Optional[Mapping[str, SlotValue]] = None,
              input_keys: Iterable[str] = PIPELINE_KEYS) -> Graph:
    """The run's graph, from its resolved configuration (`pipeline_vae.resolve`) and slot overrides: what
    `build_estimator` trains and what an ablation spec's variants are checked by.

    Raises:
        ValueError, TypeError: As `build_graph`.
    """
    return build_graph(config.latent_dim, config.learning_rate, ops, input_keys=input_keys,
                       loss=config.loss or DEFAULT_LOSS, kl_warmup=config.kl_warmup, model=config.model,
                       widths=config.widths,
                       image_shape=config.image_shape, likelihood=config.likelihood,
                       binarize_threshold=config.binarize_threshold, mixed_precision=config.mixed_precision,
                       dynamic_binarization=config.protocol == "dynamic_mnist", prior=config.prior,
                       prior_components=config.prior_components, upper_latent_dim=config.upper_latent_dim,
                       flow=config.flow, flow_steps=config.flow_steps)
