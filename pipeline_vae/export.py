"""A trained model in the forms other tools load: a TensorFlow SavedModel with serving signatures, a TFLite file, ONNX
files, and an MLflow model that `mlflow models serve` serves. `pipeline-vae export --save-dir DIR --format F` writes them into
DIR/export/ and checks each against `CVAE` on the run's own test images before it says it is done.

    savedmodel/     signatures (float32 images in 0..1, [N, H, W, C]; the run's preprocessing is inside):
                      encode(images)              -> mean, logvar               q(z|x) (q_0 with a flow)
                      decode(z)                   -> images                     the likelihood's mean images
                      sample(n, seed)             -> images, z                  n draws from the run's prior, decoded
                      elbo(images, samples, seed) -> elbo                       per-image ELBO, `samples` draws each
    model.tflite    the encode and decode signatures, for TensorFlow Lite's interpreter (signature runners)
    onnx/           encode.onnx (images -> mean, logvar) and decode.onnx (z -> images), for onnxruntime (tf2onnx)
    mlflow/         an MLflow pyfunc model (encode: images -> mean, logvar) with a tensor signature and an input example

    import tensorflow as tf
    served = tf.saved_model.load("runs/cvae/export/savedmodel")
    mean = served.signatures["encode"](images=tf.constant(x))["mean"]

The noise of `sample` and `elbo` is `tf.random.stateless_normal` at seed (seed, 0) (and a uniform at (seed, 1) for a
mixture's component): the same seed gives the same numbers in any process. The MLflow model holds no pickled code:
its loader is this toolkit's module `pipeline_vae.serving`, reading the SavedModel.
"""
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from ops import Rescale
from pipeline_vae.atomic import atomic_path
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import _Evaluator, per_image_elbo

#: The formats `export` writes, and the folder or file name of each under DIR/export/.
FORMATS: Dict[str, str] = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "onnx", "mlflow": "mlflow"}
#: The ONNX opset of `export_onnx` (onnxruntime 1.20 runs up to 21).
ONNX_OPSET = 17
EXPORT_DIR = "export"
#: How far an export's numbers may be from `CVAE`'s (float32 through a different runtime): absolute for latents and
#: images, relative for the ELBO.
TOLERANCE = 1e-4


class _Served(tf.Module):
    """The run's models and preprocessing as tf.functions with fixed input signatures."""
    def __init__(self, vae: CVAE) -> None:
        super().__init__()
        self.encoder, self.decoder = vae.encoder, vae.decoder
        # the learned prior's and the flow's parameter models, tracked so the SavedModel holds their weights
        self.parts = [m for op in (vae.prior, vae.flow) if op is not None for m in op.get_fe_models()]
        self._vae, self._evaluator = vae, _Evaluator(vae)
        images = tf.TensorSpec([None, *vae.image_shape], tf.float32, name="images")
        scalar = tf.TensorSpec([], tf.int32)
        self.encode = tf.function(self._encode, input_signature=[images])
        self.decode = tf.function(self._decode,
                                  input_signature=[tf.TensorSpec([None, vae.latent_dim], tf.float32, name="z")])
        self.sample = tf.function(self._sample, input_signature=[scalar, scalar])
        self.elbo = tf.function(self._elbo, input_signature=[images, scalar, scalar])

    def _prepare(self, images: tf.Tensor) -> tf.Tensor:
        """What `CVAE.prepare` does to float images in 0..1, in the graph."""
        x = images
        if self._vae.likelihood.name == "discretized_logistic":
            x = tf.round(x * 255.0) / 255.0
        for op in self._vae._preprocessing:
            if not isinstance(op, Rescale):  # the inputs are scaled already
                out = op.forward([x], {"mode": "eval"})
                x = out[0] if isinstance(out, (list, tuple)) else out
        return x

    def _encode(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        mean, logvar = self._vae._split.forward(self.encoder(self._prepare(images), training=False), {"mode": "eval"})
        return {"mean": mean, "logvar": logvar}

    def _decode(self, z: tf.Tensor) -> Dict[str, tf.Tensor]:
        return {"images": self._vae.likelihood.mean(self.decoder(z, training=False))}

    def _sample(self, n: tf.Tensor, seed: tf.Tensor) -> Dict[str, tf.Tensor]:
        eps = tf.random.stateless_normal(tf.stack([n, self._vae.noise_dim]), seed=tf.stack([seed, 0]))
        u = tf.random.stateless_uniform(tf.reshape(n, [1]), seed=tf.stack([seed, 1]))
        z = self._vae.prior.sample(eps, u)
        return {"images": self._decode(z)["images"], "z": z}

    def _elbo(self, images: tf.Tensor, samples: tf.Tensor, seed: tf.Tensor) -> Dict[str, tf.Tensor]:
        x = self._prepare(images)
        eps = stateless_noise(samples, tf.shape(x)[0], self._vae.noise_dim, seed)
        return {"elbo": tf.reduce_mean(self._evaluator.log_weights(x, eps), axis=0)}


def stateless_noise(samples: Any, n: Any, noise_dim: int, seed: Any) -> tf.Tensor:
    """The `elbo` signature's noise: stateless standard normals [samples, n, noise_dim] at seed (seed, 0)."""
    return tf.random.stateless_normal(tf.stack([samples, n, noise_dim]), seed=tf.stack([seed, 0]))


def _replace_dir(build: str, final: str) -> None:
    """Move the finished folder `build` to `final`, replacing an older export there only once the new one is whole."""
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(final))
        os.rename(final, os.path.join(old, "x"))
    os.rename(build, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export_savedmodel(vae: CVAE, path: str) -> str:
    """Write the SavedModel with the encode, decode, sample and elbo signatures to `path` (a folder, replaced whole
    once the new one is written). Returns `path`."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix=".savedmodel-", dir=parent)
    try:
        served = _Served(vae)
        tf.saved_model.save(served, build, signatures={"encode": served.encode, "decode": served.decode,
                                                       "sample": served.sample, "elbo": served.elbo})
        _replace_dir(build, path)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return path


def export_tflite(savedmodel: str, path: str) -> str:
    """Convert the SavedModel's encode and decode signatures to one TFLite file at `path` (atomically)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(savedmodel, signature_keys=["encode", "decode"])
    flat = converter.convert()
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(flat)
    return path


def export_onnx(vae: CVAE, path: str) -> str:
    """Write `encode.onnx` (images -> mean, logvar, the run's preprocessing inside) and `decode.onnx` (z -> images) to
    the folder `path` (replaced whole once both are written), converted by tf2onnx from the SavedModel's functions.
    Returns `path`.

    Raises:
        ValueError: If tf2onnx is not installed.
    """
    try:
        import tf2onnx
    except ImportError:
        raise ValueError("--format onnx: tf2onnx is not installed; pip install -e '.[onnx]' and then pip install "
                         "--no-deps tf2onnx==1.16.1 (docs/usage.md says why)") from None
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix=".onnx-", dir=parent)
    try:
        served = _Served(vae)
        for name, function in (("encode", served.encode), ("decode", served.decode)):
            tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=ONNX_OPSET,
                                          output_path=os.path.join(build, f"{name}.onnx"))
        _replace_dir(build, path)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return path


def export_mlflow(vae: CVAE, savedmodel: str, path: str, example: np.ndarray) -> str:
    """An MLflow pyfunc model at `path` serving `encode` (images -> mean, logvar) from a copy of the SavedModel,
    loaded by `pipeline_vae.serving` (no pickled code), with a tensor signature and `example` as its input example."""
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ValueError("--format mlflow: MLflow is not installed; pip install -e '.[mlflow]'") from None
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *vae.image_shape), "images")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, vae.latent_dim), "mean"),
                        TensorSpec(np.dtype(np.float32), (-1, vae.latent_dim), "logvar")]))
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix=".mlflow-", dir=parent)
    try:
        mlflow.pyfunc.save_model(os.path.join(build, "model"), loader_module="pipeline_vae.serving",
                                 data_path=savedmodel, signature=signature, input_example=example,
                                 pip_requirements=["tensorflow==2.15.1", "numpy==1.26.4"])
        _replace_dir(os.path.join(build, "model"), path)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return path


def check_savedmodel(vae: CVAE, path: str, images: np.ndarray, seed: int = 0) -> Dict[str, float]:
    """The largest absolute differences between the SavedModel at `path` (loaded from disk) and `vae` on `images`:
    encode's mean and logvar, decode of those means; and the largest relative difference of the per-image ELBO at
    the same noise (a sum over every pixel, whose float32 rounding grows with the image)."""
    served = tf.saved_model.load(path)
    x = vae.prepare(images)
    out = served.signatures["encode"](images=tf.constant(x))
    mean, logvar = vae.encode(x)
    decoded = served.signatures["decode"](z=tf.constant(mean))["images"].numpy()
    expected = vae.decode(mean)
    elbo = served.signatures["elbo"](images=tf.constant(x), samples=tf.constant(2), seed=tf.constant(seed))
    noise = stateless_noise(2, len(x), vae.noise_dim, seed).numpy()
    expected_elbo = per_image_elbo(vae, x, noise=noise)
    return {"mean": float(np.max(np.abs(out["mean"].numpy() - mean))),
            "logvar": float(np.max(np.abs(out["logvar"].numpy() - logvar))),
            "decode": float(np.max(np.abs(decoded.reshape(expected.shape) - expected))),
            "elbo_relative": float(np.max(np.abs(elbo["elbo"].numpy() - expected_elbo) /
                                          np.maximum(1.0, np.abs(expected_elbo))))}


def check_tflite(vae: CVAE, path: str, images: np.ndarray) -> Dict[str, float]:
    """The largest absolute differences between the TFLite file's encode and decode signatures and `vae`'s."""
    interpreter = tf.lite.Interpreter(model_path=path)
    x = vae.prepare(images)
    mean, logvar = vae.encode(x)
    out = interpreter.get_signature_runner("encode")(images=x)
    decoded = interpreter.get_signature_runner("decode")(z=mean)["images"]
    expected = vae.decode(mean)
    return {"mean": float(np.max(np.abs(out["mean"] - mean))), "logvar": float(np.max(np.abs(out["logvar"] - logvar))),
            "decode": float(np.max(np.abs(decoded.reshape(expected.shape) - expected)))}


def check_onnx(vae: CVAE, path: str, images: np.ndarray) -> Dict[str, float]:
    """The largest absolute differences between the ONNX files (run by onnxruntime) and `vae`'s encode and decode."""
    import onnxruntime
    encode = onnxruntime.InferenceSession(os.path.join(path, "encode.onnx"), providers=["CPUExecutionProvider"])
    decode = onnxruntime.InferenceSession(os.path.join(path, "decode.onnx"), providers=["CPUExecutionProvider"])
    x = vae.prepare(images)
    mean, logvar = vae.encode(x)
    out = dict(zip([o.name for o in encode.get_outputs()], encode.run(None, {"images": x})))
    decoded = decode.run(["images"], {"z": mean.astype(np.float32)})[0]
    expected = vae.decode(mean)
    return {"mean": float(np.max(np.abs(out["mean"] - mean))), "logvar": float(np.max(np.abs(out["logvar"] - logvar))),
            "decode": float(np.max(np.abs(decoded.reshape(expected.shape) - expected)))}


def check_mlflow(vae: CVAE, path: str, images: np.ndarray) -> Dict[str, float]:
    """The largest absolute differences between the MLflow model's predictions (loaded with `mlflow.pyfunc`) and
    `vae.encode`."""
    import mlflow.pyfunc
    x = vae.prepare(images)
    out = mlflow.pyfunc.load_model(path).predict(x)
    mean, logvar = vae.encode(x)
    return {"mean": float(np.max(np.abs(out["mean"] - mean))), "logvar": float(np.max(np.abs(out["logvar"] - logvar)))}


def export_run(save_dir: str, formats: Sequence[str], images: np.ndarray, out_dir: Optional[str] = None,
               trust_code: bool = False, vae: Optional[Any] = None) -> List[Dict[str, Any]]:
    """Export a run folder in each of `formats` and check each against `CVAE` on `images`.

    Args:
        save_dir: A folder written by `pipeline-vae train`.
        formats: Some of `FORMATS` ("savedmodel", "tflite", "onnx", "mlflow"); the SavedModel is written in any
            case (the TFLite file and the MLflow model are made from it).
        images: Images to check the exports on (e.g. the run's first test images).
        out_dir: Where to write (default `save_dir/export`).
        trust_code: Load the models' own architectures, running any code they hold (see `CVAE.load`).
        vae: The run already loaded with `CVAE.load(save_dir)` (default: load it here).

    Returns:
        One dict per format written: `format`, `path`, `max_abs_diff` (per output).

    Raises:
        ValueError: For an unknown format, or an export whose numbers differ from the run's by more than
            `TOLERANCE`.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"--format: expected some of {', '.join(FORMATS)}, got {', '.join(unknown) or 'none'}")
    vae = vae or CVAE.load(save_dir, trust_code=trust_code)
    out_dir = out_dir or os.path.join(save_dir, EXPORT_DIR)
    savedmodel = export_savedmodel(vae, os.path.join(out_dir, FORMATS["savedmodel"]))
    done = []
    for fmt in dict.fromkeys(["savedmodel", *formats]):
        if fmt not in formats:
            continue
        if fmt == "savedmodel":
            path, diffs = savedmodel, check_savedmodel(vae, savedmodel, images)
        elif fmt == "tflite":
            path = export_tflite(savedmodel, os.path.join(out_dir, FORMATS["tflite"]))
            diffs = check_tflite(vae, path, images)
        elif fmt == "onnx":
            path = export_onnx(vae, os.path.join(out_dir, FORMATS["onnx"]))
            diffs = check_onnx(vae, path, images)
        else:
            path = export_mlflow(vae, savedmodel, os.path.join(out_dir, FORMATS["mlflow"]), vae.prepare(images[:2]))
            diffs = check_mlflow(vae, path, images)
        worst = max(diffs, key=diffs.get)
        if diffs[worst] > TOLERANCE:
            raise ValueError(f"export {fmt}: {worst} differs from the run's by {diffs[worst]:.2g} (more than "
                             f"{TOLERANCE:g}); {path} is not to be trusted")
        done.append({"format": fmt, "path": path, "max_abs_diff": diffs})
    return done
