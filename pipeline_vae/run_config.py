"""The run folder and its one owner of settings: a frozen `RunConfig`, written once as `cvae_config.json`.

    config = RunConfig.read("runs/cvae")     # what evaluate, plot, CVAE.load and the ablation runner start from
    config.data, config.likelihood, config.binarize_threshold, config.image_shape, config.files["encoder"]

Everything downstream of training (preprocessing, likelihood, data source, file names) is read from here, never
guessed. Folders written before this configuration existed (no `version`) are read as the MNIST runs they were: 28x28
grey images, Bernoulli likelihood, binarized at their recorded threshold (0.5 if none) unless their `binarize` slot
was dropped. A configuration edited into nonsense is refused with one line naming the file and the field.
"""
import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Optional, Tuple

from ops.names import DEFAULT_LIKELIHOOD
from pipeline_vae import settings
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.data.image_data import DataSource

CONFIG_FILE = "cvae_config.json"
#: The grey level MNIST runs are cut at: the seed's, and what folders from before configurations used.
MNIST_BINARIZE_THRESHOLD = 0.5
VERSION = 2
#: The files a run writes into its folder, by role: training writes the first ones, `evaluate` the metrics, `plot` the
#: pictures, `explore` its pictures and numbers; tracking keeps its run ids. Every name of a run folder is here (and `CONFIG_FILE`, `iw_progress_file`).
FILES: Dict[str, str] = {"encoder": "encoder_best_loss.h5", "decoder": "decoder_best_loss.h5",
                         "prior": "prior_best_loss.h5", "flow": "flow_best_loss.h5",
                         "log": "train_log.csv", "samples": "samples", "gif": "samples.gif",
                         "checkpoint": "checkpoint", "tensorboard": "tensorboard", "metrics": "metrics.json",
                         "tracking": "tracking.json", "manifold": "manifold.png",
                         "latent_scatter": "latent_scatter.png", "reconstructions": "reconstructions.png",
                         "training_curves": "training_curves.png", "interpolation": "interpolation.png",
                         "traversals": "traversals.png", "latent_units": "latent_units.png",
                         "best_worst": "best_worst.png", "explore": "explore.json"}
#: The formats `plot` can write its figures in (the pictures' roles above, with the extension swapped), and the
#: resolution of its PNGs by default.
FIGURE_FORMATS, FIGURE_DPI = ("png", "pdf", "svg"), 100
#: The settings that make two runs different models; resuming or reusing a folder with any of them changed is refused.
RUN_IDENTITY = ("data", "image_shape", "likelihood", "binarize_threshold", "mixed_precision", "latent_dim",
                "batch_size", "learning_rate", "model", "widths", "slots", "protocol", "prior", "prior_components",
                "upper_latent_dim", "flow", "flow_steps", "kl_warmup")
MNIST_SHAPE = (28, 28, 1)
#: Settings of how a run was made that do not change the model: the budget, the traces, the evaluation.
RUN_ONLY = ("train_steps_per_epoch", "eval_steps_per_epoch", "log_steps", "early_stop", "lr_plateau", "tensorboard",
            "resume", "iw_samples", "n_images")


#: The HDF5 attribute of a saved model (and the file in the checkpoint folder) that records the `RUN_IDENTITY` of the
#: run that trained it, so an edited `cvae_config.json` is caught.
STAMP_ATTRIBUTE = "pipeline_vae_run_identity"
CHECKPOINT_STAMP = "run_identity.json"


def iw_progress_file(save_dir: str, k: int, seed: int) -> str:
    """Where `pipeline-vae evaluate` keeps an unfinished IW bound of `k` samples with noise seed `seed`."""
    return os.path.join(save_dir, f"iw_bound_k{k}_seed{seed}.partial.npz")


class ConfigError(ValueError):
    """A run's configuration file is missing a field or holds a value that makes no sense."""


@dataclass(frozen=True)
class RunConfig:
    """How a run was made: its data, preprocessing, likelihood, model, op graph, budget and files.

    Args:
        data: The data source (what `load_data` reads again for evaluation and plots).
        data_description: One line on the data actually trained on (e.g. a subset), for people.
        image_shape: (H, W, C) of the images.
        labels: Whether the data had labels (the latent scatter needs them).
        likelihood: The decoder likelihood (`ops.densities.LIKELIHOODS`).
        binarize_threshold: The grey level evaluation images are cut at (the `binarize` slot's), or None.
        latent_dim: Size of z.
        model: The encoder/decoder family.
        widths: Its widths (None: the family's default).
        learning_rate: Adam's learning rate.
        lr_schedule: Its schedule ("cosine"), or None for a constant rate (or `lr_plateau`'s reductions).
        batch_size: Examples per batch.
        epochs: Training epochs asked for.
        seed: The run's seed, or None.
        loss: The loss chosen by name, or None when the `loss` slot was set directly.
        kl_warmup: The epochs of KL warm-up on that loss (`KLWarmupLoss`), or None for none.
        slots: Slot name -> class names of its ops.
        files: What the run writes, by role (see `FILES`).
        metric: The logged test metric the best models are chosen by.
        mixed_precision: Whether the models were trained with mixed precision.
        jit: Whether the training step was compiled with XLA.
        train_steps_per_epoch, eval_steps_per_epoch, log_steps, early_stop, lr_plateau, tensorboard, resume: The
            budget and the traces it ran with (`pipeline_vae.settings`; absent in folders from before they were
            recorded, read as their defaults).
        iw_samples, n_images: The evaluation it asks for (`pipeline-vae evaluate`'s defaults for this run).
        protocol: "seed" (the tutorial's) or "dynamic_mnist" (the literature's: training images binarized afresh at
            every step; the data's validation split and fixed binarization are recorded in `data`).
        prior, prior_components, upper_latent_dim: The prior p(z) and its size (`pipeline_vae.settings`; a learned prior's parameters
            are saved as `prior_best_loss.h5`).
        flow, flow_steps: The posterior flow and its steps (its parameters: `flow_best_loss.h5`).
        version: The format's version (2; folders without one are read as the MNIST runs before it).
    """
    data: DataSource = field(default_factory=DataSource)
    data_description: str = "MNIST"
    image_shape: Tuple[int, int, int] = MNIST_SHAPE
    labels: bool = True
    likelihood: str = DEFAULT_LIKELIHOOD
    binarize_threshold: Optional[float] = MNIST_BINARIZE_THRESHOLD
    latent_dim: int = settings.default("latent_dim")
    model: str = settings.default("model")
    widths: Optional[Tuple[int, ...]] = settings.default("widths")
    learning_rate: float = settings.default("learning_rate")
    lr_schedule: Optional[str] = settings.default("lr_schedule")
    batch_size: int = settings.default("batch_size")
    epochs: int = settings.default("epochs")
    seed: Optional[int] = settings.default("seed")
    loss: Optional[str] = settings.default("loss")
    kl_warmup: Optional[int] = settings.default("kl_warmup")
    slots: Dict[str, Any] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=lambda: dict(FILES))
    metric: str = "elbo"
    mixed_precision: bool = settings.default("mixed_precision")
    jit: bool = settings.default("jit")
    train_steps_per_epoch: Optional[int] = settings.default("train_steps_per_epoch")
    eval_steps_per_epoch: Optional[int] = settings.default("eval_steps_per_epoch")
    log_steps: Optional[int] = settings.default("log_steps")
    early_stop: Optional[int] = settings.default("early_stop")
    lr_plateau: Optional[int] = settings.default("lr_plateau")
    tensorboard: bool = settings.default("tensorboard")
    resume: bool = settings.default("resume")
    iw_samples: int = settings.default("iw_samples")
    n_images: Optional[int] = settings.default("n_images")
    protocol: str = settings.default("protocol")
    prior: str = settings.default("prior")
    prior_components: int = settings.default("prior_components")
    upper_latent_dim: int = settings.default("upper_latent_dim")
    flow: str = settings.default("flow")
    flow_steps: int = settings.default("flow_steps")
    version: int = VERSION

    @property
    def selection(self) -> str:
        """The split the best models were chosen on: "validation" when the data has one, else "test"."""
        return "test" if self.data.validation_fraction is None else "validation"

    def path(self, save_dir: str, role: str) -> str:
        """The path of file `role` ("encoder", "decoder", "log", ...) in `save_dir`."""
        return os.path.join(save_dir, self.files[role] if role in self.files else FILES[role])

    def to_json(self) -> Dict[str, Any]:
        """A plain-JSON form; `from_json` reads it back."""
        out = asdict(self)
        out["data"] = self.data.to_json()
        out["image_shape"] = list(self.image_shape)
        out["widths"] = None if self.widths is None else list(self.widths)
        return out

    def identity(self) -> Dict[str, Any]:
        """The `RUN_IDENTITY` fields in JSON form."""
        full = self.to_json()
        return {key: full[key] for key in RUN_IDENTITY}

    def write(self, save_dir: str) -> str:
        """Write `cvae_config.json` into `save_dir` (atomically). Returns its path."""
        path = os.path.join(save_dir, CONFIG_FILE)
        write_json_atomic(path, self.to_json())
        return path

    @classmethod
    def from_json(cls, obj: Any, where: str = CONFIG_FILE) -> "RunConfig":
        """Read a configuration (or a pre-version MNIST one), checking every field.

        Raises:
            ConfigError: "WHERE: FIELD ..." for the first field that is missing or makes no sense.
        """
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if "version" not in obj:
            obj = _legacy(obj)
        elif obj["version"] != VERSION:
            raise ConfigError(f"{where}: version {obj['version']!r} is not one this toolkit reads ({VERSION})")
        unknown = set(obj) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            return _checked(cls, obj)
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(f"{where}: {err}") from None

    @classmethod
    def read(cls, save_dir: str) -> "RunConfig":
        """The configuration of the run in `save_dir`; the MNIST defaults for a folder made before configurations.

        The configuration is checked against what the run trained: the identity stamped into its models and its
        checkpoint (`stamp_model`, `stamp_checkpoint`) must equal the file's.

        Raises:
            FileNotFoundError: If `save_dir` is not a folder.
            ConfigError: If the file is unreadable or nonsense, or differs from what the models were trained with
                (naming the field).
        """
        config = cls._read(save_dir)
        check_stamps(save_dir, config)
        return config

    @classmethod
    def _read(cls, save_dir: str) -> "RunConfig":
        if not os.path.isdir(save_dir):
            raise FileNotFoundError(f"save_dir {save_dir} does not exist or is not a folder")
        path = os.path.join(save_dir, CONFIG_FILE)
        if not os.path.isfile(path):
            return cls()
        try:
            with open(path, encoding="utf-8") as file:
                obj = json.load(file)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not a readable JSON file ({err})") from None
        return cls.from_json(obj, where=path)


def _legacy(obj: Dict[str, Any]) -> Dict[str, Any]:
    """A configuration written before `version` (MNIST only) in today's form."""
    slots = obj.get("slots", {"binarize": ["Binarize"]})
    binarized = isinstance(slots, dict) and "binarize" in slots
    threshold = obj.get("binarize_threshold") if binarized else None
    keep = ("latent_dim", "model", "widths", "learning_rate", "batch_size", "epochs", "seed", "slots", "metric")
    out = {key: obj[key] for key in keep if key in obj}
    out.update(version=VERSION, binarize_threshold=(MNIST_BINARIZE_THRESHOLD if threshold is None else threshold)
               if binarized else None,
               loss=None)
    return out


def _checked(cls: type, obj: Dict[str, Any]) -> RunConfig:
    data = DataSource.from_json(obj.get("data", DataSource().to_json()))
    shape = obj.get("image_shape", list(MNIST_SHAPE))
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v >= 1 for v in shape)
            and shape[2] in (1, 3)):
        raise ValueError(f"image_shape must be [height, width, 1 or 3], got {shape!r}")
    likelihood = obj.get("likelihood", DEFAULT_LIKELIHOOD)
    if likelihood not in settings.LIKELIHOOD_NAMES:
        raise ValueError(f"likelihood must be one of {', '.join(settings.LIKELIHOOD_NAMES)}, got {likelihood!r}")
    for name in ("binarize_threshold", "latent_dim", "model", "widths", "learning_rate", "batch_size", "epochs",
                 "seed", "protocol", "prior", "prior_components", "upper_latent_dim", "flow",
                 "flow_steps") + RUN_ONLY:
        if name in obj:
            settings.check(name, obj[name])
    for name in ("loss", "lr_schedule", "kl_warmup"):
        if obj.get(name) is not None:
            settings.check(name, obj[name])
    for name, kind in (("slots", dict), ("files", dict), ("metric", str), ("data_description", str),
                       ("labels", bool), ("mixed_precision", bool), ("jit", bool)):
        if name in obj and not isinstance(obj[name], kind):
            raise ValueError(f"{name} must be a {kind.__name__}, got {obj[name]!r}")
    files = {**FILES, **obj.get("files", {})}
    for role, name in files.items():
        if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in name.split("/"):
            raise ValueError(f"files.{role} must be a file name inside the run folder, got {name!r}")
    values = {key: obj[key] for key in obj if key not in ("data", "image_shape", "files", "widths")}
    widths = obj.get("widths")
    return replace(cls(), **values, data=data, image_shape=tuple(shape), files=files,
                   widths=None if widths is None else tuple(widths))


def stamp_model(file: Any, config: RunConfig) -> None:
    """Record `config`'s identity in a saved model (an open `h5py.File`, or its path): an HDF5 attribute, beside
    Keras' own."""
    import h5py
    if isinstance(file, h5py.File):
        file.attrs[STAMP_ATTRIBUTE] = json.dumps(config.identity(), sort_keys=True)
        return
    with h5py.File(file, "a") as opened:
        opened.attrs[STAMP_ATTRIBUTE] = json.dumps(config.identity(), sort_keys=True)


def stamp_checkpoint(directory: str, config: RunConfig) -> None:
    """Record `config`'s identity beside a checkpoint (in `directory`, the checkpoint folder)."""
    write_json_atomic(os.path.join(directory, CHECKPOINT_STAMP), config.identity())


def _stamps(save_dir: str, config: RunConfig) -> Dict[str, Any]:
    """What each trained file of the run in `save_dir` says it was trained with: file path -> identity (files
    without a stamp, from before stamps, are left out)."""
    import h5py
    found = {}
    for role in ("encoder", "decoder"):
        path = config.path(save_dir, role)
        if not os.path.isfile(path):
            continue
        try:
            with h5py.File(path, "r") as file:
                text = file.attrs.get(STAMP_ATTRIBUTE)
        except OSError:
            continue  # not readable as HDF5: the model loader says so, naming the file
        if text is not None:
            found[path] = text
    path = os.path.join(config.path(save_dir, "checkpoint"), CHECKPOINT_STAMP)
    if os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as file:
            found[path] = file.read()
    out = {}
    for path, text in found.items():
        try:
            out[path] = json.loads(text)
        except ValueError:
            raise ConfigError(f"{path}: its record of the run's configuration is unreadable; the file is damaged "
                              "(retrain with `pipeline-vae train --fresh`)") from None
    return out


def check_stamps(save_dir: str, config: RunConfig) -> None:
    """Refuse a configuration that differs from what the run in `save_dir` trained (its models' and checkpoint's
    stamps).

    Raises:
        ConfigError: "CONFIG: FIELD is NEW, but FILE was trained with OLD; ..." for the first field that differs.
    """
    mine = config.identity()
    for path, stamped in _stamps(save_dir, config).items():
        if not isinstance(stamped, dict):
            raise ConfigError(f"{path}: its record of the run's configuration is not a JSON object")
        for key in RUN_IDENTITY:
            if key in stamped and stamped[key] != mine[key]:
                raise ConfigError(f"{os.path.join(save_dir, CONFIG_FILE)}: {key} is {mine[key]!r}, but {path} was "
                                  f"trained with {stamped[key]!r}; restore the file, or retrain with `pipeline-vae "
                                  "train --fresh`")
