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

from pipeline_vae import settings
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.data.image_data import DataSource

CONFIG_FILE = "cvae_config.json"
VERSION = 2
#: The files a run writes into its folder.
FILES: Dict[str, str] = {"encoder": "encoder_best_loss.h5", "decoder": "decoder_best_loss.h5",
                         "log": "train_log.csv", "samples": "samples", "gif": "samples.gif",
                         "checkpoint": "checkpoint", "tensorboard": "tensorboard", "metrics": "metrics.json",
                         "tracking": "tracking.json"}
#: The settings that make two runs different models; resuming or reusing a folder with any of them changed is refused.
RUN_IDENTITY = ("data", "image_shape", "likelihood", "binarize_threshold", "mixed_precision", "latent_dim", "batch_size",
                "learning_rate", "model", "widths", "slots")
MNIST_SHAPE = (28, 28, 1)


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
        slots: Slot name -> class names of its ops.
        files: What the run writes, by role (see `FILES`).
        metric: The logged test metric the best models are chosen by.
        mixed_precision: Whether the models were trained with mixed precision.
        jit: Whether the training step was compiled with XLA.
        version: The format's version (2; folders without one are read as the MNIST runs before it).
    """
    data: DataSource = field(default_factory=DataSource)
    data_description: str = "MNIST"
    image_shape: Tuple[int, int, int] = MNIST_SHAPE
    labels: bool = True
    likelihood: str = "bernoulli"
    binarize_threshold: Optional[float] = 0.5
    latent_dim: int = 2
    model: str = "conv"
    widths: Optional[Tuple[int, ...]] = None
    learning_rate: float = 1e-3
    lr_schedule: Optional[str] = None
    batch_size: int = 100
    epochs: int = 5
    seed: Optional[int] = None
    loss: Optional[str] = "analytic_kl"
    slots: Dict[str, Any] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=lambda: dict(FILES))
    metric: str = "elbo"
    mixed_precision: bool = False
    jit: bool = False
    version: int = VERSION

    def path(self, save_dir: str, role: str) -> str:
        """The path of file `role` ("encoder", "decoder", "log", ...) in `save_dir`."""
        return os.path.join(save_dir, self.files.get(role, FILES[role]))

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

        Raises:
            FileNotFoundError: If `save_dir` is not a folder.
            ConfigError: If the file is unreadable or nonsense.
        """
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
    out.update(version=VERSION, binarize_threshold=(0.5 if threshold is None else threshold) if binarized else None,
               loss=None)
    return out


def _checked(cls: type, obj: Dict[str, Any]) -> RunConfig:
    data = DataSource.from_json(obj.get("data", DataSource().to_json()))
    shape = obj.get("image_shape", list(MNIST_SHAPE))
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v >= 1 for v in shape)
            and shape[2] in (1, 3)):
        raise ValueError(f"image_shape must be [height, width, 1 or 3], got {shape!r}")
    likelihood = obj.get("likelihood", "bernoulli")
    if likelihood not in settings.LIKELIHOOD_NAMES:
        raise ValueError(f"likelihood must be one of {', '.join(settings.LIKELIHOOD_NAMES)}, got {likelihood!r}")
    for name in ("binarize_threshold", "latent_dim", "model", "widths", "learning_rate", "batch_size", "epochs",
                 "seed"):
        if name in obj:
            settings.check(name, obj[name])
    for name in ("loss", "lr_schedule"):
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
