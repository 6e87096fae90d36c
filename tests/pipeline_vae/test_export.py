"""Exports (`pipeline_vae.export`, `pipeline-vae export`): each format, read back in a fresh process, gives the numbers
of the `.h5` pair through `CVAE`; the MLflow model answers over HTTP under `mlflow models serve`."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae import get_estimator
from pipeline_vae.export import check_savedmodel, export_savedmodel, stateless_noise
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import per_image_elbo

FRESH_PROCESS_CHECK = r"""
import json, sys
import numpy as np, onnxruntime, tensorflow as tf
from pipeline_vae.inference import CVAE
run, x = sys.argv[1], np.load(sys.argv[2])
vae = CVAE.load(run)
mean, logvar = vae.encode(x)
served = tf.saved_model.load(run + "/export/savedmodel").signatures
out = served["encode"](images=tf.constant(x))
lite = tf.lite.Interpreter(model_path=run + "/export/model.tflite")
lite_out = lite.get_signature_runner("encode")(images=x)
lite_decoded = lite.get_signature_runner("decode")(z=mean)["images"]
drawn = served["sample"](n=tf.constant(5), seed=tf.constant(3))
eps = tf.random.stateless_normal([5, vae.latent_dim], seed=[3, 0]).numpy()   # the standard prior: z = eps
onnx_encode = onnxruntime.InferenceSession(run + "/export/onnx/encode.onnx", providers=["CPUExecutionProvider"])
onnx_out = dict(zip([o.name for o in onnx_encode.get_outputs()], onnx_encode.run(None, {"images": x})))
onnx_decode = onnxruntime.InferenceSession(run + "/export/onnx/decode.onnx", providers=["CPUExecutionProvider"])
onnx_decoded = onnx_decode.run(["images"], {"z": mean})[0]
print(json.dumps({
    "savedmodel_mean": float(np.abs(out["mean"].numpy() - mean).max()),
    "savedmodel_logvar": float(np.abs(out["logvar"].numpy() - logvar).max()),
    "savedmodel_decode": float(np.abs(served["decode"](z=tf.constant(mean))["images"].numpy()[..., 0]
                                      - vae.decode(mean)).max()),
    "savedmodel_sample_z": float(np.abs(drawn["z"].numpy() - eps).max()),
    "savedmodel_sample_images": float(np.abs(drawn["images"].numpy()[..., 0] - vae.decode(eps)).max()),
    "tflite_mean": float(np.abs(lite_out["mean"] - mean).max()),
    "tflite_logvar": float(np.abs(lite_out["logvar"] - logvar).max()),
    "tflite_decode": float(np.abs(lite_decoded[..., 0] - vae.decode(mean)).max()),
    "onnx_mean": float(np.abs(onnx_out["mean"] - mean).max()),
    "onnx_logvar": float(np.abs(onnx_out["logvar"] - logvar).max()),
    "onnx_decode": float(np.abs(onnx_decoded[..., 0] - vae.decode(mean)).max()),
}))
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_format_gives_the_runs_numbers_in_a_fresh_process(trained_dir, mnist, run_cli, subprocess_env,
                                                                   tmp_path):
    """`pipeline-vae export --format savedmodel --format tflite --format onnx --format mlflow` as docs/usage.md shows
    it; then a new Python process reads the SavedModel, the TFLite file and the ONNX files (in onnxruntime) and
    compares them with `CVAE` on 64 test images; the MLflow model is served by `mlflow models serve` and asked over
    HTTP."""
    run = str(tmp_path / "run")
    shutil.copytree(trained_dir, run)
    done = run_cli(["export", "--save-dir", run, "--format", "savedmodel", "--format", "tflite", "--format", "onnx",
                    "--format", "mlflow"], timeout=600)
    assert done.returncode == 0, done.stderr
    for name in ("savedmodel", "model.tflite", "onnx", "mlflow"):
        assert f"Saved: {os.path.join(run, 'export', name)} (" in done.stdout
    x = (mnist.x_test[:64] / 255.0).astype(np.float32)[..., None]
    np.save(tmp_path / "x.npy", x)
    fresh = subprocess.run([sys.executable, "-c", FRESH_PROCESS_CHECK, run, str(tmp_path / "x.npy")],
                           env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    diffs = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert max(diffs.values()) < 1e-4, diffs

    port = _free_port()
    env = {**subprocess_env, "PATH": os.path.dirname(sys.executable) + os.pathsep + subprocess_env.get("PATH", "")}
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mlflow"), "models", "serve", "-m",
                               os.path.join(run, "export", "mlflow"), "--env-manager", "local", "-h", "127.0.0.1",
                               "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        body = json.dumps({"inputs": {"images": x[:3].tolist()}}).encode()
        answer, deadline = None, time.time() + 180
        while answer is None and time.time() < deadline and server.poll() is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert answer is not None, server.stderr.read() if server.poll() is not None else "no answer in 180 s"
    finally:
        server.terminate()
        server.wait(timeout=30)
    mean, logvar = CVAE.load(run).encode(x[:3])
    np.testing.assert_allclose(answer["predictions"]["mean"], mean, atol=1e-5)
    np.testing.assert_allclose(answer["predictions"]["logvar"], logvar, atol=1e-5)


def test_an_unknown_format_is_one_line(trained_dir, run_cli):
    bad = run_cli(["export", "--save-dir", trained_dir, "--format", "pickle"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--format" in bad.stderr and "'pickle'" in bad.stderr


@pytest.mark.slow
def test_the_savedmodel_carries_a_learned_prior_and_a_flow(small_mnist, tmp_path):
    """A VampPrior run with a planar flow: the SavedModel's ELBO is the run's (prior and flow densities included) at
    the same noise, and `sample` draws from the learned prior as `prior.sample` does with that noise."""
    save_dir = str(tmp_path / "run")
    get_estimator(epochs=1, batch_size=50, latent_dim=2, model="mlp", widths=(32, ), prior="vamp", prior_components=4,
                  flow="planar", flow_steps=2, save_dir=save_dir, data=small_mnist, log_steps=0, seed=0).fit()
    vae = CVAE.load(save_dir)
    path = export_savedmodel(vae, os.path.join(save_dir, "export", "savedmodel"))
    x = vae.prepare(small_mnist.x_test[:40])
    diffs = check_savedmodel(vae, path, x, seed=7)
    assert max(diffs.values()) < 1e-4, diffs
    served = tf.saved_model.load(path).signatures
    elbo = served["elbo"](images=tf.constant(x), samples=tf.constant(3), seed=tf.constant(7))["elbo"].numpy()
    noise = stateless_noise(3, 40, vae.noise_dim, 7).numpy()
    np.testing.assert_allclose(elbo, per_image_elbo(vae, x, noise=noise), rtol=1e-5)
    plain = per_image_elbo(CVAE(vae.encoder, vae.decoder, binarize_threshold=vae.threshold), x, noise=noise)
    assert np.abs(elbo - plain).max() > 0.1  # the prior and flow change the numbers: they are really in the graph
    drawn = served["sample"](n=tf.constant(6), seed=tf.constant(2))
    eps = tf.random.stateless_normal([6, vae.noise_dim], seed=[2, 0])
    u = tf.random.stateless_uniform([6], seed=[2, 1])
    np.testing.assert_allclose(drawn["z"].numpy(), vae.prior.sample(eps, u).numpy(), atol=1e-5)
