"""Users' own images end to end: scikit-learn's real 8x8 digits exported to a folder of PNGs (train, evaluate, plot,
ablate with the CLI, no code change), a folder of RGB images generated here, other likelihoods, and a user's own
loss op in the `loss` slot."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from fastestimator.op.tensorop.tensorop import TensorOp
from PIL import Image

from ops.densities import bernoulli_log_likelihood, kl_to_standard_normal
from pipeline_vae import get_estimator
from pipeline_vae.ablation.runner import run_ablation
from pipeline_vae.ablation.spec import parse_spec
from pipeline_vae.explore import explore_run
from pipeline_vae.export import export_run
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import evaluate
from pipeline_vae.plots import plot_run, plot_sample_grid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("data") / "digits")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_digits.py"), out], check=True,
                   capture_output=True, timeout=120)
    return out


@pytest.mark.slow
def test_digits_folder_trains_evaluates_plots_and_ablates_from_the_cli(digits_dir, run_cli, tmp_path):
    run = str(tmp_path / "run")
    done = run_cli(["train", "--data", digits_dir, "--epochs", "2", "--seed", "0", "--save-dir", run])
    assert done.returncode == 0, done.stderr
    assert f"data folder {digits_dir}: 1617 train / 180 test images 8x8x1" in done.stdout
    assert "likelihood discretized_logistic" in done.stdout and "binarized" not in done.stdout
    config = json.load(open(os.path.join(run, "cvae_config.json")))
    assert config["likelihood"] == "discretized_logistic" and config["image_shape"] == [8, 8, 1]
    assert config["data"]["data"] == digits_dir and config["binarize_threshold"] is None

    done = run_cli(["evaluate", "--save-dir", run, "--iw-samples", "20"])  # the run folder is all it needs
    assert done.returncode == 0, done.stderr
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["n_images"] == 180 and metrics["likelihood"] == "discretized_logistic"
    assert metrics["iw_bound"] >= metrics["elbo_analytic"] - 1.0  # K=20 is at least the ELBO, up to noise
    assert metrics["elbo_bpd"] == pytest.approx(-metrics["elbo_analytic"] / (64 * np.log(2)), rel=1e-6)
    assert metrics["iw_bound_bpd"] == pytest.approx(-metrics["iw_bound"] / (64 * np.log(2)), rel=1e-6)

    done = run_cli(["plot", "--save-dir", run])
    assert done.returncode == 0, done.stderr
    for name in ("manifold.png", "latent_scatter.png", "reconstructions.png", "training_curves.png", "samples.gif"):
        assert os.path.isfile(os.path.join(run, name)), name

    done = run_cli(["explore", "--save-dir", run, "--n-images", "60", "--units", "2"])
    assert done.returncode == 0, done.stderr
    explored = json.load(open(os.path.join(run, "explore.json")))
    assert explored["n_images"] == 60 and len(explored["kl_per_unit"]) == explored["latent_dim"] == 2
    for name in ("interpolation.png", "traversals.png", "latent_units.png", "best_worst.png"):
        assert f"Saved: {os.path.join(run, name)}" in done.stdout

    done = run_cli(["export", "--save-dir", run, "--format", "savedmodel", "--format", "tflite", "--format", "onnx",
                    "--format", "mlflow"])  # each checked inside against CVAE
    assert done.returncode == 0, done.stderr
    for name in ("model.tflite", os.path.join("onnx", "encode.onnx"), os.path.join("onnx", "decode.onnx"),
                 os.path.join("mlflow", "MLmodel")):
        assert os.path.isfile(os.path.join(run, "export", name)), name

    spec = tmp_path / "likelihoods.yaml"
    spec.write_text(f"""name: digits_likelihoods
seeds: [0]
budget: {{epochs: 1}}
data: {{data: {digits_dir}, test_fraction: 0.1}}
eval: {{iw_samples: 5, n_images: null}}
variants:
  - name: logistic
    set: {{likelihood: discretized_logistic}}
  - name: gaussian
    set: {{likelihood: gaussian}}
  - name: bernoulli_beta2
    set: {{likelihood: bernoulli, binarize_threshold: 0.5}}
    ops: {{loss: {{op: BetaVAELoss, args: {{beta: 2.0}}}}}}
""")
    done = run_cli(["ablate", str(spec), "--out", str(tmp_path / "ab")], timeout=600)
    assert done.returncode == 0, done.stderr
    rows = {}
    for variant in ("logistic", "gaussian", "bernoulli_beta2"):
        with open(tmp_path / "ab" / "runs" / variant / "seed_0" / "result.json") as file:
            rows[variant] = json.load(file)
        config = json.load(open(tmp_path / "ab" / "runs" / variant / "seed_0" / "cvae_config.json"))
        assert config["image_shape"] == [8, 8, 1] and rows[variant]["n_images"] == 180
    assert [rows[v]["likelihood"] for v in rows] == ["discretized_logistic", "gaussian", "bernoulli"]
    assert rows["bernoulli_beta2"]["elbo_bpd"] is not None  # binarized: a likelihood of binary pixels
    assert "| **logistic** (baseline) |" in done.stdout and "bits/dim" in done.stdout


class Notes:
    """A stream that keeps what is written to it."""
    def __init__(self):
        self.text = ""

    def write(self, line):
        self.text += line

    def flush(self):
        pass


def _colour_folder(root, n=40, size=(12, 10)):
    """Images of two coloured rectangles on a coloured background, no labels."""
    rng = np.random.default_rng(0)
    for i in range(n):
        image = np.empty(size + (3, ), np.uint8)
        image[:] = rng.integers(0, 256, 3)
        r, c = rng.integers(0, size[0] - 4), rng.integers(0, size[1] - 4)
        image[r:r + 4, c:c + 4] = rng.integers(0, 256, 3)
        Image.fromarray(image).save(os.path.join(root, f"{i:03d}.png"))
    return root


@pytest.mark.slow
def test_an_rgb_folder_trains_and_every_picture_adapts(tmp_path):
    os.makedirs(tmp_path / "colour")
    folder = _colour_folder(str(tmp_path / "colour"))
    save_dir = str(tmp_path / "run")
    get_estimator(epochs=2, batch_size=8, latent_dim=3, data=folder, save_dir=save_dir, log_steps=None,
                  test_fraction=0.2, widths=[16, 32]).fit()
    vae = CVAE.load(save_dir)
    assert vae.image_shape == (12, 10, 3) and vae.likelihood.name == "discretized_logistic"
    assert vae.decoder.output_shape == (None, 12, 10, 6)  # location and log-scale per channel
    images = np.stack([np.asarray(Image.open(os.path.join(folder, f"{i:03d}.png"))) for i in range(8)])
    assert vae.reconstruct(images).shape == (8, 12, 10, 3) and vae.generate(5, seed=0).shape == (5, 12, 10, 3)
    grid = np.asarray(Image.open(os.path.join(save_dir, "samples", "epoch_002.png")).convert("RGB")).astype(int)
    assert np.abs(grid[..., 0] - grid[..., 1]).max() > 0  # drawn in colour (a grey colour map gives R = G = B)
    red = np.zeros((4, 6, 5, 3), np.float32)
    red[..., 0] = 1.0
    pixels = np.asarray(Image.open(plot_sample_grid(red, str(tmp_path / "red.png"), "red")).convert("RGB"))
    assert (pixels == [255, 0, 0]).all(axis=-1).sum() >= 4 * 6 * 5 * 9  # every image pixel drawn red (3x3 px each)
    metrics = evaluate(vae, images, iw_samples=3, show_progress=False)
    assert metrics["likelihood"] == "discretized_logistic"
    dims = 12 * 10 * 3  # every channel of every pixel is a dimension
    assert metrics["elbo_bpd"] == pytest.approx(-metrics["elbo_analytic"] / (dims * np.log(2)), rel=1e-6)
    assert metrics["iw_bound_bpd"] == pytest.approx(-metrics["iw_bound"] / (dims * np.log(2)), rel=1e-6)

    notes = Notes()
    written = [os.path.basename(p) for p in plot_run(save_dir, images, None, log=notes)]
    assert written == ["reconstructions.png", "training_curves.png", "samples.gif"]
    assert "latent_scatter.png skipped: the data has no labels" in notes.text
    assert "manifold.png skipped: latent size is 3, not 2" in notes.text
    formats = ["savedmodel", "tflite", "onnx", "mlflow"]
    exported = export_run(save_dir, formats, images)  # each checked against CVAE within 1e-4
    assert [e["format"] for e in exported] == formats
    assert all(max(e["max_abs_diff"].values()) < 1e-4 for e in exported)
    summary = explore_run(save_dir, images, units=3, extremes=2, samples=2)
    assert len(summary["written"]) == 5 and summary["latent_dim"] == 3
    assert vae.traverse(images[0], 2, [-1.0, 1.0]).shape == (2, 12, 10, 3)  # colour traversals
    traversals = np.asarray(Image.open(os.path.join(save_dir, "traversals.png")).convert("RGB")).astype(int)
    assert np.abs(traversals[..., 0] - traversals[..., 2]).max() > 0  # drawn in colour
    with pytest.raises(ValueError, match=r"images: shape \(8, 12, 10\) not supported; expected uint8 images .* "
                       r"\[N, 12, 10, 3\]"):
        vae.encode(images[..., 0])

    spec = parse_spec(f"""name: colour
seeds: [0]
budget: {{epochs: 1}}
base: {{latent_dim: 2, batch_size: 8, widths: [16, 32]}}
data: {{data: {folder}, test_fraction: 0.2}}
eval: {{iw_samples: 3, n_images: null}}
variants:
  - name: gaussian
    set: {{likelihood: gaussian}}
""", "colour.yaml")
    (row, ) = run_ablation(spec, str(tmp_path / "ablation"), stream=Notes())
    assert row["likelihood"] == "gaussian" and row["n_images"] == 8 and row["iw_bound_bpd"] > 0


@pytest.mark.slow
def test_gaussian_likelihood_on_grey_levels_of_mnist(small_mnist, tmp_path):
    summary = get_estimator(epochs=1, batch_size=50, latent_dim=2, data=small_mnist, likelihood="gaussian",
                            save_dir=str(tmp_path), log_steps=1, seed=0).fit(summary="g")
    vae = CVAE.load(str(tmp_path))
    assert vae.likelihood.name == "gaussian" and not vae.binarize  # no cut: the Gaussian models grey levels
    losses = [float(v) for _, v in sorted(summary.history["train"]["loss"].items())]
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:]))  # it trains on the Gaussian loss
    metrics = evaluate(vae, small_mnist.x_test, iw_samples=0, show_progress=False)
    assert metrics["elbo_bpd"] == pytest.approx(-(metrics["elbo_analytic"] - 784 * np.log(255)) / (784 * np.log(2)))


class MyLoss(TensorOp):
    """A user's own loss op in the `loss` slot, written against the slot's keys, knowing nothing of likelihoods."""
    def forward(self, data, state):
        x, x_logit, mean, logvar = data
        return tf.reduce_mean(-bernoulli_log_likelihood(x, x_logit) + 0.5 * kl_to_standard_normal(mean, logvar))


@pytest.mark.slow
def test_a_users_own_loss_op_still_works(small_mnist, tmp_path):
    op = MyLoss(inputs=("x", "x_logit", "mean", "logvar"), outputs="my_loss", mode="!infer")
    summary = get_estimator(epochs=1, batch_size=50, data=small_mnist, ops={"loss": op}, save_dir=str(tmp_path),
                            log_steps=1, seed=0).fit(summary="mine")
    losses = [float(v) for _, v in sorted(summary.history["train"]["my_loss"].items())]
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:]))  # it trains on the user's loss
    assert json.load(open(tmp_path / "cvae_config.json"))["slots"]["loss"] == ["MyLoss"]
