"""Reading a run's saved models without running code from the run folder.

    encoder = load_run_model("runs/cvae", config, "encoder")        # rebuilt from the config, weights from the .h5
    encoder = load_run_model(..., trust_code=True)                   # the file's own architecture (may run its code)

A run folder is data: people share them. `tf.keras.models.load_model` on a full-model `.h5` rebuilds the architecture
stored in the file, and a `Lambda` layer in it carries marshalled Python bytecode that runs when the model is called.
So the project's loaders (`CVAE.load`, `pipeline-vae evaluate` and `plot`, the ablation reports) never deserialize the
file's architecture: they rebuild the models from the run's recorded configuration (`cvae_config.json`, plain JSON:
`pipeline_vae.slots.make_model`) and read only the weights (`Model.load_weights`, HDF5 arrays). A file whose weights
do not fit that architecture is refused in one line.

The architecture in the file is still read, as JSON through h5py (nothing is deserialized), to say why a file does
not fit: a model with layers that hold code (`Lambda`, or any layer class Keras does not ship) is refused in one line
naming the file, the layers and the flag that loads it anyway (`trust_code=True`, `--trust-run-code`), which is for
folders whose author the user trusts (for example a run trained with the user's own encoder in the `encode` slot).

The files stay full models, so the seed's `tf.keras.models.load_model(path, compile=False)` reads them unchanged.
"""
import json
import os
from typing import Any, Iterator, List

import tensorflow as tf

from pipeline_vae.run_config import CONFIG_FILE, RunConfig

#: Keras layers whose saved configuration is Python code (marshalled bytecode or a traced TF function).
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")
#: Model containers Keras itself rebuilds (their layers are checked one by one).
MODEL_CLASSES = ("Functional", "Sequential", "Model")
TRUST_FLAG = "--trust-run-code"


class UnsafeModelError(ValueError):
    """A saved model would run code from its file, or does not fit the run's recorded architecture."""


def _layers(config: Any) -> Iterator[Any]:
    """Every layer entry ({"class_name": ..., "config": ...}) of a Keras model configuration, nested models too."""
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            yield config
            for layer in config["config"].get("layers", ()) or ():
                yield from _layers(layer)
    elif isinstance(config, list):
        for item in config:
            yield from _layers(item)


def architecture(path: str) -> Any:
    """The model configuration stored in a Keras `.h5` file, as plain JSON (nothing is deserialized).

    Raises:
        ValueError: If the file is not HDF5 or holds no model configuration (weights only, truncated, ...).
    """
    import h5py
    try:
        with h5py.File(path, "r") as file:
            text = file.attrs.get("model_config")
    except OSError as err:
        raise ValueError(f"{path} is not a readable Keras .h5 model ({_first_line(err)})") from None
    if text is None:
        raise ValueError(f"{path} is not a readable Keras .h5 model (it holds no architecture: weights only?)")
    try:
        return json.loads(text.decode() if isinstance(text, bytes) else text)
    except ValueError:
        raise ValueError(f"{path} is not a readable Keras .h5 model (its architecture is not JSON)") from None


def code_layers(path: str) -> List[str]:
    """The layers of the model in `path` that hold code: `Lambda`-like layers and classes Keras does not ship, as
    "name (ClassName)" strings; empty for the project's own models."""
    found = []
    for layer in _layers(architecture(path)):
        name = str(layer["class_name"])
        builtin = name in MODEL_CLASSES or (name not in CODE_LAYERS and isinstance(getattr(tf.keras.layers, name, None),
                                                                                   type))
        if not builtin or str(layer.get("registered_name") or name) != name:
            found.append(f"{layer['config'].get('name', '?')} ({name})")
    return found


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def rebuild(config: RunConfig, kind: str) -> tf.keras.Model:
    """The `kind` ("encoder" or "decoder") model of the run `config` describes, freshly built (weights random), under
    the dtype policy it trained with."""
    from pipeline_vae.slots import make_model, model_settings
    policy = tf.keras.mixed_precision.global_policy()
    if config.mixed_precision:  # as fe.build does: the layers take the policy in force when they are made
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return make_model(kind, model_settings(config))
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)


def load_run_model(save_dir: str, config: RunConfig, kind: str, trust_code: bool = False) -> tf.keras.Model:
    """Load the run's `kind` model ("encoder", "decoder", or a learned "prior" or "flow") from its `.h5` file without
    running code from the file.

    Args:
        save_dir: The run folder.
        config: Its configuration (`RunConfig.read(save_dir)`): what the model is rebuilt from.
        kind: "encoder", "decoder", "prior" or "flow".
        trust_code: Load the file's own architecture with `tf.keras.models.load_model` (which runs any code in it).

    Returns:
        The model, with the file's weights.

    Raises:
        FileNotFoundError: If the file is missing.
        UnsafeModelError: If the model holds code layers (and `trust_code` is off), or its weights do not fit the
            architecture the configuration describes.
        ValueError: If the file is not a readable full-model `.h5`.
    """
    path = config.path(save_dir, kind)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} model {path} does not exist (train with `pipeline-vae train --save-dir DIR`)")
    if trust_code:
        try:
            return tf.keras.models.load_model(path, compile=False)
        except Exception as err:  # h5py raises OSError, Keras ValueError/KeyError, for damaged or weights-only files
            raise ValueError(f"{kind} model {path} is not a readable Keras .h5 model ({_first_line(err)})") from err
    try:
        code = code_layers(path)
    except ValueError as err:
        raise ValueError(f"{kind} model {err}; restore the file, or retrain with `pipeline-vae train --fresh`") from None
    if code:
        raise UnsafeModelError(f"{kind} model {path} holds layers that run code ({', '.join(code)}); it was not "
                               f"written by pipeline-vae's own models. Pass {TRUST_FLAG} (trust_code=True) only if "
                               "you trust whoever made this folder")
    model = rebuild(config, kind)
    try:
        model.load_weights(path)
    except (OSError, KeyError, RuntimeError) as err:  # h5py, for a file damaged past its architecture
        raise ValueError(f"{kind} model {path} is not a readable Keras .h5 model ({_first_line(err)}); restore the "
                         "file, or retrain with `pipeline-vae train --fresh`") from None
    except ValueError as err:  # Keras, for a layer count or shape that differs
        raise UnsafeModelError(f"{kind} model {path} does not fit the architecture its run folder's {CONFIG_FILE} "
                               f"records (model {config.model}, latent_dim {config.latent_dim}, widths "
                               f"{config.widths or 'default'}): {_first_line(err)}; pass {TRUST_FLAG} to load the "
                               "file's own architecture if you trust whoever made it") from None
    return model
