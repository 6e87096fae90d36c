"""Builders that chain fe.Pipeline -> fe.Network -> fe.Estimator for the CVAE on any image data."""
import math
import os
import tempfile
from dataclasses import replace
from typing import Any, Callable, List, Mapping, Optional, Sequence

import fastestimator as fe
import tensorflow as tf
from fastestimator.dataset.numpy_dataset import NumpyDataset
from fastestimator.op.numpyop import NumpyOp
from fastestimator.schedule import cosine_decay
from fastestimator.trace.adapt import EarlyStopping, LRScheduler, ReduceLROnPlateau
from fastestimator.trace.trace import Trace

from ops.names import DEFAULT_LIKELIHOOD
from pipeline_vae import settings
from pipeline_vae.data import ImageData, load_data
from pipeline_vae.data.pipeline import datasets
from pipeline_vae.models import DEFAULT_MODEL, IMAGE_SHAPE
from pipeline_vae.resolve import DataArg, resolve
from pipeline_vae.run_config import CONFIG_FILE, FILES, MNIST_BINARIZE_THRESHOLD, RUN_IDENTITY, RunConfig
from pipeline_vae.slots import DEFAULT_LOSS, Graph, SlotValue, build_graph, graph_for
from pipeline_vae.resume import ExtendableRestoreWizard
from pipeline_vae.tracking.base import config_params
from pipeline_vae.traces import (AtomicCSVLogger, ExampleMean, FullModelSaver, LoggedStepsTensorBoard, SampleGrid,
                                 SaysWhere, StopOnNaN)

#: FastEstimator's ReduceLROnPlateau floor (its `min_lr` default).
FE_MIN_LR = 1e-6
#: The eval metric users read and the best models are selected on: -mean loss over the whole test set, in nats.
METRIC = "elbo"


#: How `get_pipeline` feeds the Network: "tf.data" (default, measured faster here) or "fe" (FE's NumpyDataset and
#: torch DataLoader, needed for NumpyOps).
LOADERS = ("tf.data", "fe")



def get_pipeline(batch_size: int = settings.default("batch_size"),
                 data: DataArg = None,
                 ops: Optional[Sequence[NumpyOp]] = None,
                 num_process: Optional[int] = None,
                 loader: Optional[str] = None) -> fe.Pipeline:
    """A Pipeline that batches raw uint8 images: train = the training split (reshuffled every epoch), eval = the
    validation split if the data has one, else the test split (`ImageData.selection`).

    Key: `x` (uint8 [B, H, W, C]). Scaling and binarization happen in the Network. Labels are left out: nothing in
    the CVAE reads them (FE would prune them with a warning); the data keeps them for plots and analysis.

    Two loaders give the same batches: a `tf.data` pipeline handed to FE (`loader="tf.data"`, the default without
    `ops`: shuffled over the whole set, files decoded in parallel, batched and prefetched inside TensorFlow), or FE's
    own NumpyDataset and torch DataLoader with `num_process` worker processes (`loader="fe"`, needed for
    per-example NumpyOps; in-memory data only). On the 2-core machine of docs/benchmarks.md the tf.data route
    trained at 0.94-1.01 of a raw TensorFlow loop's speed, FE's loader at 0.88-0.90: its worker processes compete
    with TensorFlow for the cores and its batches cross a Python generator.

    Args:
        batch_size: Examples per batch.
        data: Anything `pipeline_vae.data.load_data` reads: None or "mnist", a Keras set name, an `.npz` or folder
            path, a `DataSource`, an `ImageData` or an `MNIST`.
        ops: NumpyOps to run per example in the loader (implies `loader="fe"`).
        num_process: FE loader worker processes; None lets FastEstimator choose (one per CPU core).
        loader: "tf.data" or "fe"; None picks "tf.data" unless `ops` are given.

    Returns:
        The Pipeline.

    Raises:
        ValueError: If `batch_size` is not a positive integer, `loader` is unknown or "tf.data" with `ops` or
            `num_process`, "fe" with image files, or the data is missing or malformed (`DataError`).
    """
    settings.check("batch_size", batch_size)
    loader = loader or ("fe" if ops else "tf.data")
    if loader not in LOADERS:
        raise ValueError(f"loader must be one of {', '.join(LOADERS)}, got {loader!r}")
    if loader == "tf.data" and (ops or num_process is not None):
        raise ValueError("ops (NumpyOps) and num_process need loader='fe'")
    data = load_data(data, fetch=False)
    if loader == "fe":
        if not data.in_memory:
            raise ValueError("loader='fe' needs images in memory (arrays or an .npz), not a folder of files")
        return fe.Pipeline(train_data=NumpyDataset({"x": data.train.x}),
                           eval_data=NumpyDataset({"x": data.selection.x}),
                           batch_size=batch_size,
                           ops=list(ops or []),
                           num_process=num_process)
    train, test = datasets(data, batch_size)
    return TFDataPipeline(train_data=train, eval_data=test)


class TFDataPipeline(fe.Pipeline):
    """FE's Pipeline over `tf.data` sets, without the full garbage collection FE runs after every epoch.

    FE 1.7's `Pipeline.__exit__` calls `gc.collect()` after each train and eval epoch (and in its warm-up) so that its
    loader's worker processes do not kill each other; with TensorFlow and torch loaded a full collection takes about
    0.3 s here, 0.6 s an epoch. A `tf.data` set has no worker processes and nothing to shut down, so this only
    releases the lock, as FE does after collecting.
    """
    def __exit__(self, *exc: Any) -> None:
        self.ctx_loader = None
        self.ctx_lock.release()


def get_network(latent_dim: int = settings.default("latent_dim"),
                learning_rate: float = settings.default("learning_rate"), ops: Optional[Mapping[str, SlotValue]] = None,
                model: str = DEFAULT_MODEL, widths: Optional[Sequence[int]] = None,
                image_shape: Sequence[int] = IMAGE_SHAPE, likelihood: str = DEFAULT_LIKELIHOOD,
                binarize_threshold: Optional[float] = MNIST_BINARIZE_THRESHOLD) -> fe.Network:
    """The CVAE Network: the named slots (see `pipeline_vae.slots`) and one UpdateOp per model.

    Args:
        latent_dim: Size of z.
        learning_rate: Adam's learning rate.
        ops: Slot overrides, e.g. `{"loss": MyLoss(...), "binarize": None}`.
        model: The encoder/decoder family ("conv", the seed's; "mlp").
        widths: Its layer widths (None: the family's default).
        image_shape: (H, W, C) of the images.
        likelihood: The decoder likelihood.
        binarize_threshold: The `binarize` slot's threshold (None: no binarization).

    Returns:
        The Network.

    Raises:
        ValueError: If a slot or model name is unknown or an op's inputs are not produced upstream.
        TypeError: If a slot value is not a TensorOp, a list of them, or None.
    """
    return fe.Network(ops=build_graph(latent_dim, learning_rate, ops, model=model, widths=widths,
                                      image_shape=image_shape, likelihood=likelihood,
                                      binarize_threshold=binarize_threshold).ops)


def get_traces(graph: Graph, save_dir: str, config: Optional[RunConfig] = None) -> List[Trace]:
    """The traces `get_estimator` adds: a stop at the first NaN/Inf loss, exact test ELBO, best-model saving, the CSV
    log, per-epoch sample grids and GIF, and, as the run's configuration says, early stopping, a learning-rate
    schedule or reduction, and TensorBoard.

    Args:
        graph: The op graph (its models are saved; its loss key is averaged; its decoder draws the sample grids).
        save_dir: Where `<model_name>_best_loss.h5`, `train_log.csv`, `samples/` and `samples.gif` go.
        config: The run's configuration (None: the defaults, `RunConfig()`). It decides `early_stop` (FE's
            EarlyStopping on `elbo`), `lr_plateau` (FE's ReduceLROnPlateau: divide by 10 after that many evals
            without a better ELBO, per model, down to 1e-6 or the starting rate if that is lower), `lr_schedule`
            ("cosine": FE's LRScheduler with `cosine_decay` per epoch, to a hundredth of each model's starting rate at
            epoch `epochs`), `tensorboard` (FE's TensorBoard trace in `save_dir/tensorboard`, at every `log_steps`),
            the likelihood the sample grids show the mean of, and the identity stamped into the saved models.

    Returns:
        The traces, in order.

    Raises:
        ValueError: If `lr_schedule` is given with `lr_plateau`.
    """
    config = config or RunConfig()
    traces: List[Trace] = [StopOnNaN(monitor_names=graph.loss_key),
                           ExampleMean(inputs=graph.loss_key, outputs=METRIC, batch_key="x", scale=-1.0)]
    traces += [
        FullModelSaver(model=model, save_dir=save_dir, metric=METRIC, save_best_mode="max",
                       weights_name=f"{model.model_name}_best_loss", config=config) for model in graph.models
    ]
    traces.append(AtomicCSVLogger(filename=os.path.join(save_dir, FILES["log"])))
    if graph.decoder is not None:
        traces.append(SampleGrid(decoder=graph.decoder, save_dir=save_dir, likelihood=config.likelihood,
                                 prior=graph.prior))
    if config.tensorboard:
        traces.append(LoggedStepsTensorBoard(log_dir=os.path.join(save_dir, "tensorboard"),
                                             log_steps=config.log_steps, hparams=config_params(config), metric=METRIC))
    if config.early_stop is not None:
        traces.append(EarlyStopping(monitor=METRIC, patience=config.early_stop, compare="max"))
    if config.lr_schedule is not None:
        if config.lr_plateau is not None:
            raise ValueError("lr_schedule and lr_plateau both set the learning rate; give one of them")
        traces += [LRScheduler(model=model, lr_fn=cosine_schedule(
            float(tf.keras.backend.get_value(model.optimizer.learning_rate)), config.epochs))
                   for model in graph.models]
    if config.lr_plateau is not None:  # FE's floor (min_lr 1e-6) would *raise* a smaller starting rate: cap it there
        traces += [
            ReduceLROnPlateau(model=model, metric=METRIC, patience=config.lr_plateau, factor=0.1, best_mode="max",
                              min_lr=min(FE_MIN_LR, float(tf.keras.backend.get_value(model.optimizer.learning_rate))))
            for model in graph.models
        ]
    return traces


def cosine_schedule(init_lr: float, epochs: int) -> Callable[[int], float]:
    """The learning rate of each epoch (1-based) for `lr_schedule="cosine"`: FE's `cosine_decay` over `epochs`, from
    just under `init_lr` after the first epoch's step down to `init_lr / 100` in the last."""
    def lr_fn(epoch: int) -> float:
        return cosine_decay(epoch, cycle_length=epochs, init_lr=init_lr, min_lr=init_lr / 100)
    return lr_fn


def release_determinism() -> None:
    """Undo the process-wide determinism an earlier seeded `get_estimator` call switched on in this process.

    `fe.enable_deterministic` sets `fe.fe_deterministic_seed`, TF's op determinism and `TF_DETERMINISTIC_OPS`; left
    on, an unseeded run fails at its first unseeded random op and FE's RestoreWizard refuses to start.
    """
    from tensorflow.python.framework import config as tf_config  # TF's public API has no way to turn it off
    fe.fe_deterministic_seed = None
    os.environ.pop("TF_DETERMINISTIC_OPS", None)
    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


def check_save_dir(save_dir: str, config: RunConfig) -> None:
    """Refuse to mix two different runs in one folder.

    If `save_dir` already holds a run (its `cvae_config.json` plus models or a checkpoint) whose `RUN_IDENTITY`
    settings differ from `config`, raise instead of silently resuming or overwriting it.

    Raises:
        ValueError: Naming the folder and the first differing setting, and what to do.
    """
    path = os.path.join(save_dir, CONFIG_FILE)
    holds_run = any(os.path.exists(config.path(save_dir, role)) for role in ("encoder", "decoder", "checkpoint"))
    if not (holds_run and os.path.isfile(path)):
        return
    try:
        old = RunConfig.read(save_dir).identity()
    except ValueError as err:
        raise ValueError(f"save_dir {save_dir} holds a run whose configuration is unusable ({err}); use another "
                         "save_dir, or --fresh to start over") from None
    new = config.identity()
    for key in RUN_IDENTITY:
        if old[key] != new[key]:
            raise ValueError(f"save_dir {save_dir} holds a different run ({key}={old[key]!r}, this run has "
                             f"{key}={new[key]!r}); use another --save-dir, or --fresh to start over in it")


def get_estimator(epochs: int = settings.default("epochs"),
                  batch_size: int = settings.default("batch_size"),
                  latent_dim: int = settings.default("latent_dim"),
                  learning_rate: float = settings.default("learning_rate"),
                  save_dir: Optional[str] = None,
                  train_steps_per_epoch: Optional[int] = None,
                  eval_steps_per_epoch: Optional[int] = None,
                  seed: Optional[int] = None,
                  ops: Optional[Mapping[str, SlotValue]] = None,
                  data: DataArg = None,
                  early_stop: Optional[int] = None,
                  lr_plateau: Optional[int] = None,
                  lr_schedule: Optional[str] = None,
                  log_steps: Optional[int] = settings.default("log_steps"),
                  tensorboard: bool = False,
                  loss: str = DEFAULT_LOSS,
                  kl_warmup: Optional[int] = None,
                  model: str = DEFAULT_MODEL,
                  widths: Optional[Sequence[int]] = None,
                  resume: bool = False,
                  likelihood: Optional[str] = None,
                  binarize_threshold: Optional[float] = None,
                  image_size: Optional[Sequence[int]] = None,
                  channels: Optional[int] = None,
                  test_fraction: float = settings.default("test_fraction"),
                  split_seed: int = settings.default("split_seed"),
                  validation_fraction: Optional[float] = None,
                  protocol: str = settings.default("protocol"),
                  prior: str = settings.default("prior"),
                  prior_components: int = settings.default("prior_components"),
                  upper_latent_dim: int = settings.default("upper_latent_dim"),
                  flow: str = settings.default("flow"),
                  flow_steps: int = settings.default("flow_steps"),
                  mixed_precision: bool = False,
                  jit: bool = False,
                  traces: Sequence[Trace] = (),
                  log: Callable[[str], None] = print) -> fe.Estimator:
    """Pipeline + Network + Estimator for the CVAE on any image data, saving the best encoder/decoder by test ELBO.

    Every epoch trains on the training split and evaluates on the test split; `elbo` (nats, -mean loss weighted over
    all test examples) is logged and the full models are written to `save_dir/encoder_best_loss.h5` and
    `decoder_best_loss.h5` whenever it improves. `save_dir/cvae_config.json` (the run's `RunConfig`) records the
    data, preprocessing, likelihood, model and budget, `train_log.csv` the logged values, and
    `samples/epoch_NNN.png` + `samples.gif` show 16 images decoded from fixed z after every epoch.

    Nothing is written or downloaded outside `save_dir`: MNIST and the Keras sets must be in the project's cache
    already (`pipeline-vae data [--data NAME]` fetches them). Every argument is checked before anything is written to
    `save_dir`.

    Args:
        epochs: Training epochs.
        batch_size: Examples per batch (train and eval).
        latent_dim: Size of z.
        learning_rate: Adam's learning rate.
        save_dir: Where models and the config go; None makes a fresh temporary folder and says where (when the run
            is built and when training ends).
        train_steps_per_epoch: Cap on training steps per epoch (None: the whole training set).
        eval_steps_per_epoch: Cap on eval steps per epoch (None: the whole test set).
        seed: If given, `fe.enable_deterministic(seed)` (seeds Python, NumPy, TF and torch, and makes TF ops
            deterministic: process-wide, as FE does it). Two processes run with the same seed and arguments give
            bit-identical models on CPU; repeat runs inside one process may differ, depending on what ran before.
            None (unseeded) switches that process-wide determinism off again (`release_determinism`).
        ops: Slot overrides for ablations, e.g. `{"loss": MyLoss(...), "binarize": None}` (see `pipeline_vae.slots`).
        data: What `pipeline_vae.data.load_data` reads: None or "mnist" (the default), "fashion_mnist", "cifar10",
            an `.npz` or folder path, a `DataSource`, an `ImageData` or an `MNIST`.
        early_stop: Patience (evals) for FE's EarlyStopping on `elbo`; None disables it.
        lr_plateau: Patience (evals) for FE's ReduceLROnPlateau on `elbo` (factor 0.1); None disables it.
        lr_schedule: "cosine": decay the learning rate each epoch to a hundredth of it at the last epoch (FE's
            `cosine_decay`); None keeps it constant. Not together with `lr_plateau`.
        log_steps: Print (and log to `train_log.csv`) the training loss every this many steps (0: per-epoch lines
            only; None: silent).
        tensorboard: Also write TensorBoard event files to `save_dir/tensorboard`.
        loss: The loss by name: "analytic_kl" (AnalyticKLLoss, closed-form KL; the default, chosen by measurement: see
            docs/results.md) or "mc_kl" (CVAELoss, the seed's one-sample Monte Carlo KL).
        kl_warmup: KL warm-up over this many epochs (`KLWarmupLoss`: the closed-form KL's weight rises linearly from
            0 to 1), as learned priors and two stochastic layers need (docs/ablations/README.md); None: none.
        model: The encoder/decoder family: "conv" (the seed's, the default) or "mlp" (the Keras examples' MLP).
        widths: Its layer widths: conv filters (one stride-2 convolution each, default 32, 64) or MLP hidden sizes
            (default 512, 256); the decoder mirrors them. None: the family's default.
        resume: Checkpoint every epoch to `save_dir/checkpoint` (FE's RestoreWizard, fixed for Python 3.11 in
            `pipeline_vae.resume`) and continue from the last checkpoint there, if any: both models and optimizers,
            epoch and step, the best metric so far and the log. A larger `epochs` than before extends the run. With
            `seed`, the part after a resume draws fresh random numbers (FE cannot restore the generators' positions),
            so only an uninterrupted seeded run is bit-identical to another.
        likelihood: "bernoulli", "gaussian" or "discretized_logistic"; None follows the data (Bernoulli for MNIST
            and black-and-white images, discretized logistic for other images).
        binarize_threshold: Cut training images at this grey level (0..1); None: 0.5 for MNIST with the Bernoulli
            likelihood (the seed's), no cut otherwise.
        image_size: (H, W) to resize a folder's images to.
        channels: 1 or 3 to convert images to (None: follow the data).
        test_fraction: Share held out for testing when the data has no test split (seeded by `split_seed`).
        split_seed: Seed of that split (and of the validation split).
        validation_fraction: Hold out this share of the training images as a validation split, on which the logged
            `elbo`, the best models and early stopping are decided (None: the test split, the seed's behaviour).
        protocol: "seed" (the tutorial's) or "dynamic_mnist" (the literature's dynamically binarized MNIST: fresh
            draws of the training images, 10000 of them held out for validation, validation and test images
            binarized once by a seeded draw, IW bound at K = 5000; see docs/usage.md).
        prior: The prior p(z): "standard_normal" (the seed's), "mixture" (learned mixture of Gaussians) or "vamp"
            (VampPrior); a learned prior's parameters train with the models and are saved as `prior_best_loss.h5`.
        prior_components: Its mixture components or pseudo-inputs.
        upper_latent_dim: The size of z2 with prior "hierarchical" (two stochastic layers, Burda et al. 2016).
        flow: The posterior flow: "none" (the seed's Gaussian) or "planar" (`ops.PlanarFlow`; its parameters are saved
            as `flow_best_loss.h5`).
        flow_steps: Its steps.
        mixed_precision: FE's mixed precision for both models (`fe.build(mixed_precision=True)`: float16 compute,
            float32 weights, float32 model outputs so the losses stay float32, dynamic loss scaling). For GPUs; it
            runs on a CPU, slowly.
        jit: Compile the training step with XLA (`tf.config.optimizer.set_jit("autoclustering")`; process-wide, as
            TensorFlow does it; a later `get_estimator(jit=False)` turns it off again).
        traces: More traces to run, after the built-in ones: e.g. `pipeline_vae.tracking.MLflowLogger(save_dir)` or
            `WandbLogger(save_dir)` to follow the run in MLflow or W&B.
        log: Where the one-line data and likelihood summary goes (None: nowhere).

    Returns:
        The Estimator; call `.fit()`.

    Raises:
        ValueError: For any invalid argument, missing/bad data, an unknown slot, or an op whose inputs are not
            produced upstream; all raised here, before anything is written to `save_dir` or trained.
        TypeError: If a slot value is not a TensorOp, a list of them, or None.
    """
    config, images = resolve(dict(epochs=epochs, batch_size=batch_size, latent_dim=latent_dim,
                                  learning_rate=learning_rate, train_steps_per_epoch=train_steps_per_epoch,
                                  eval_steps_per_epoch=eval_steps_per_epoch, seed=seed, early_stop=early_stop,
                                  lr_plateau=lr_plateau, lr_schedule=lr_schedule, log_steps=log_steps,
                                  tensorboard=tensorboard, loss=loss, kl_warmup=kl_warmup, model=model, widths=widths,
                                  resume=resume,
                                  likelihood=likelihood, binarize_threshold=binarize_threshold, image_size=image_size,
                                  channels=channels, test_fraction=test_fraction, split_seed=split_seed,
                                  validation_fraction=validation_fraction, protocol=protocol, prior=prior,
                                  prior_components=prior_components, upper_latent_dim=upper_latent_dim,
                                  flow=flow, flow_steps=flow_steps,
                                  mixed_precision=mixed_precision, jit=jit), data, ops)
    return build_estimator(config, images, save_dir=save_dir, ops=ops, traces=traces, log=log)


def build_estimator(config: RunConfig, data: ImageData, save_dir: Optional[str] = None,
                    ops: Optional[Mapping[str, SlotValue]] = None, traces: Sequence[Trace] = (),
                    log: Optional[Callable[[str], None]] = print) -> fe.Estimator:
    """Pipeline + Network + Estimator from a resolved configuration (`pipeline_vae.resolve.resolve`): what
    `get_estimator` builds after resolving its arguments. Nothing here decides a setting: it reads `config`.

    Args:
        config: The run's configuration (its `slots` and `files` are filled in from the graph built here).
        data: The images `config` was resolved with.
        save_dir: The run folder; None makes a fresh temporary folder and says where it is (on `log`, and again
            when training ends).
        ops: Slot overrides (see `get_estimator`).
        traces: More traces, after the built-in ones.
        log: Where the one-line data and likelihood summary goes (None: nowhere).

    Returns:
        The Estimator; call `.fit()`.

    Raises:
        ValueError: If the graph does not connect or `save_dir` holds a different run.
        TypeError: If a slot value is not a TensorOp, a list of them, or None.
    """
    if config.seed is not None:
        fe.enable_deterministic(config.seed)  # before the pipeline: tf.data's shuffle takes its seed when it is made
    else:
        release_determinism()
    pipeline = get_pipeline(batch_size=config.batch_size, data=data)
    graph = graph_for(config, ops)
    tf.config.optimizer.set_jit("autoclustering" if config.jit else False)
    best_files = {model.model_name: f"{model.model_name}_best_loss.h5" for model in graph.models}
    config = replace(config, slots=graph.describe(), files={**FILES, **best_files})
    temporary = save_dir is None
    save_dir = save_dir or tempfile.mkdtemp(prefix="pipeline-vae-")
    os.makedirs(save_dir, exist_ok=True)
    check_save_dir(save_dir, config)
    config.write(save_dir)
    if log is not None:
        cut = f", binarized at {config.binarize_threshold:g}" if config.binarize_threshold is not None else ""
        if config.protocol == "dynamic_mnist":
            cut = ", training images binarized afresh at every step"
        log(f"pipeline-vae: data {config.data_description}; likelihood {config.likelihood}{cut}; best models chosen "
            f"by {data.selection_name} ELBO")
    all_traces = get_traces(graph, save_dir, config) + list(traces)
    if temporary:
        all_traces.append(SaysWhere(save_dir, log))
    if config.resume:
        all_traces.append(ExtendableRestoreWizard(directory=config.path(save_dir, "checkpoint"), config=config))
    eval_steps = config.eval_steps_per_epoch
    if eval_steps is None:  # FE 1.7 needs the count for a tf.data eval set; this is one full pass
        eval_steps = math.ceil(len(data.selection) / config.batch_size)
    return fe.Estimator(pipeline=pipeline,
                        network=fe.Network(ops=graph.ops),
                        epochs=config.epochs,
                        traces=all_traces,
                        train_steps_per_epoch=config.train_steps_per_epoch,
                        eval_steps_per_epoch=eval_steps,
                        log_steps=config.log_steps)
