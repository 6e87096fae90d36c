"""Issue 24: one way into a run. The resolve step applies every default once; the CLI, typed as a user types it,
reaches the same configuration; an edited configuration is refused; evaluate and plot keep the run's preprocessing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pipeline_vae
from ops import Binarize, DynamicBinarize
from pipeline_vae.data import DataSource, ImageData
from pipeline_vae.resolve import resolve
from pipeline_vae.run_config import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _grey_arrays(n: int = 40, binary: bool = False) -> ImageData:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8)
    if binary:
        x = np.where(x > 127, 255, 0).astype(np.uint8)
    return ImageData.from_arrays(x[:30], x[30:])


def test_resolve_applies_the_data_defaults_once(small_mnist):
    config, data = resolve({}, small_mnist)
    assert (config.likelihood, config.binarize_threshold) == ("bernoulli", 0.5)  # MNIST: the seed's
    assert config.image_shape == (28, 28, 1) and len(data.test) == 130
    config, _ = resolve({"likelihood": "gaussian"}, small_mnist)
    assert (config.likelihood, config.binarize_threshold) == ("gaussian", None)  # grey levels are never cut then
    config, _ = resolve({}, _grey_arrays())
    assert (config.likelihood, config.binarize_threshold) == ("discretized_logistic", None)
    config, _ = resolve({}, _grey_arrays(binary=True))
    assert (config.likelihood, config.binarize_threshold) == ("bernoulli", None)  # already black and white
    config, _ = resolve({"binarize_threshold": 0.3}, small_mnist)
    assert config.binarize_threshold == 0.3


def test_resolve_lets_the_binarize_slot_decide_the_recorded_threshold(small_mnist):
    assert resolve({}, small_mnist, ops={"binarize": None})[0].binarize_threshold is None
    assert resolve({}, small_mnist, ops={"binarize": Binarize(inputs="x", outputs="x", threshold=0.25)})[
        0].binarize_threshold == 0.25
    # DynamicBinarize draws while training and cuts at its eval_threshold otherwise: evaluation cuts there too
    assert resolve({}, small_mnist, ops={"binarize": DynamicBinarize(inputs="x", outputs="x", eval_threshold=0.4)})[
        0].binarize_threshold == 0.4
    assert resolve({}, small_mnist, ops={"loss": None})[0].loss is None  # the slot replaces the loss chosen by name


def test_resolve_records_the_budget_and_the_evaluation(small_mnist):
    config, _ = resolve({"epochs": 2, "train_steps_per_epoch": 7, "log_steps": 0, "iw_samples": 5, "n_images": 9},
                        small_mnist)
    written = config.to_json()
    assert (written["epochs"], written["train_steps_per_epoch"], written["log_steps"]) == (2, 7, 0)
    assert (written["iw_samples"], written["n_images"]) == (5, 9)
    assert RunConfig.from_json(json.loads(json.dumps(written))) == config


@pytest.mark.parametrize("raw, message", [
    ({"latent_dims": 2}, "unknown setting(s) 'latent_dims'"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"lr_schedule": "cosine", "lr_plateau": 2}, "lr_schedule and lr_plateau both set the learning rate"),
    ({"image_size": [8, 8]}, "image_size, channels, test_fraction, split_seed and validation_fraction go with data given by name"),
])
def test_resolve_refuses_bad_settings_in_one_line(raw, message, small_mnist):
    with pytest.raises(ValueError) as err:
        resolve(raw, small_mnist)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_data_source_settings_go_into_the_source(tmp_path):
    folder = _png_folder(tmp_path / "pics", 12, (10, 12))
    config, data = resolve({"image_size": [8, 8], "test_fraction": 0.25, "split_seed": 3}, folder)
    assert config.data == DataSource(data=folder, image_size=(8, 8), test_fraction=0.25, split_seed=3)
    assert config.image_shape == (8, 8, 3) and len(data.test) == 3


def test_submodules_and_mnist_unpack_as_users_write_them(mnist):
    assert callable(pipeline_vae.metrics.evaluate)  # docs/usage.md's spelling, with no extra import
    (x_train, y_train), (x_test, y_test) = mnist  # Keras' load_data() form
    assert x_train.shape == (60000, 28, 28) and y_test.shape == (10000, )
    with pytest.raises(AttributeError):
        pipeline_vae.no_such_thing


def _png_folder(path, n: int, size=(10, 12)) -> str:
    rng = np.random.default_rng(1)
    os.makedirs(path)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(os.path.join(path, f"{i}.png"))
    return str(path)


@pytest.mark.parametrize("args, flag", [
    (["train", "--epochs", "x"], "argument --epochs"),
    (["train", "--image-size", "64"], "argument --image-size: expected 2 arguments"),
    (["train", "--image-size", "0", "8"], "argument --image-size: expected a positive integer, got '0'"),
    (["evaluate"], "the following arguments are required: --save-dir"),
    (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
])
def test_argparse_errors_are_one_line_without_the_usage_block(args, flag, run_cli):
    result = run_cli(args, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pipeline-vae: error: ")
    assert flag in result.stderr and "usage:" not in result.stderr
    assert "--help" in result.stderr  # where the usage is


@pytest.mark.slow
def test_a_resized_folder_trains_and_evaluates_as_the_readme_types_it(tmp_path, run_cli):
    """README: `pipeline-vae train --data my_images/ --image-size 64 64 --save-dir runs/mine`, then evaluate and
    plot with --data: the run's image size and split are kept."""
    folder = _png_folder(tmp_path / "my_images", 20)
    run = tmp_path / "mine"
    result = run_cli(["train", "--data", folder, "--image-size", "8", "8", "--save-dir", str(run), "--epochs", "1",
                      "--train-steps-per-epoch", "2", "--batch-size", "4", "--log-steps", "0", "--widths", "4"])
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "cvae_config.json").read_text())
    assert config["image_shape"] == [8, 8, 3] and config["data"]["image_size"] == [8, 8]
    assert config["train_steps_per_epoch"] == 2 and config["epochs"] == 1  # the budget is recorded
    moved = shutil.copytree(folder, tmp_path / "moved")  # the same images elsewhere: --data replaces only the images
    result = run_cli(["evaluate", "--save-dir", str(run), "--iw-samples", "2", "--data", str(moved)])
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_images"] == 2  # the run's split: 10% of 20 images, not another split or size
    result = run_cli(["plot", "--save-dir", str(run), "--data", str(moved)])
    assert result.returncode == 0, result.stderr
    recon = Image.open(run / "reconstructions.png")
    assert recon.size[0] > 0


@pytest.mark.slow
def test_an_edited_configuration_is_refused_naming_the_field(trained_dir, tmp_path, run_cli):
    for field, value in (("binarize_threshold", 0.9), ("image_shape", [28, 28, 3]), ("latent_dim", 3)):
        run = tmp_path / field
        shutil.copytree(trained_dir, run)
        (run / "metrics.json").unlink(missing_ok=True)  # (other tests evaluate the shared run)
        config = json.loads((run / "cvae_config.json").read_text())
        config[field] = value
        (run / "cvae_config.json").write_text(json.dumps(config))
        result = run_cli(["evaluate", "--save-dir", str(run), "--iw-samples", "0", "--n-images", "10"])
        assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
        assert f"{field} is" in result.stderr and "trained with" in result.stderr, result.stderr
        assert "--fresh" in result.stderr and not (run / "metrics.json").exists()
    run = tmp_path / "untouched"
    shutil.copytree(trained_dir, run)
    result = run_cli(["evaluate", "--save-dir", str(run), "--iw-samples", "0", "--n-images", "10"])
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_evaluate_says_how_long_the_bound_will_take(trained_dir, tmp_path, run_cli):
    run = tmp_path / "run"
    shutil.copytree(trained_dir, run)
    result = run_cli(["evaluate", "--save-dir", str(run), "--iw-samples", "50", "--n-images", "250"])
    assert result.returncode == 0, result.stderr
    # 5000 decodes a call: 100 images at K = 50, so the estimate comes after the second call, before the end
    assert "pipeline-vae: IW bound K=50 on 250 images: about " in result.stderr
    assert "IW bound, K=50" in result.stdout


def test_evaluate_defaults_to_the_runs_recorded_evaluation(trained_dir, tmp_path, run_cli):
    """`evaluate` reads K and the image count from the run's configuration (settings' default K = 100; here the
    record is edited, which is allowed: they are not part of what was trained)."""
    from pipeline_vae import settings
    assert settings.default("iw_samples") == 100 and json.loads(
        (open(os.path.join(trained_dir, "cvae_config.json")).read()))["iw_samples"] == 100
    run = tmp_path / "run"
    shutil.copytree(trained_dir, run)
    config = json.loads((run / "cvae_config.json").read_text())
    config.update(iw_samples=3, n_images=7)
    (run / "cvae_config.json").write_text(json.dumps(config))
    result = run_cli(["evaluate", "--save-dir", str(run)])
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["iw_samples"], metrics["n_images"]) == (3, 7)
    result = run_cli(["evaluate", "--save-dir", str(run), "--iw-samples", "2", "--n-images", "5"])  # flags win
    metrics = json.loads((run / "metrics.json").read_text())
    assert result.returncode == 0 and (metrics["iw_samples"], metrics["n_images"]) == (2, 5)


@pytest.mark.slow
def test_a_script_without_a_save_dir_says_where_it_saved(subprocess_env, tmp_path):
    fe_cli = os.path.join(os.path.dirname(sys.executable), "fastestimator")
    env = dict(subprocess_env, TMPDIR=str(tmp_path))
    result = subprocess.run([fe_cli, "train", os.path.join(ROOT, "apphub", "cvae_mnist", "cvae_mnist_tf.py"),
                             "--epochs", "1", "--batch_size", "8", "--train_steps_per_epoch", "2",
                             "--eval_steps_per_epoch", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    folders = [name for name in os.listdir(tmp_path) if name.startswith("pipeline-vae-")]
    assert len(folders) == 1
    where = os.path.join(str(tmp_path), folders[0])
    assert f"no save_dir given: this run's files go to {where}" in result.stdout
    assert any(f"the best models, configuration and log are in {where}" in line  # after training, beside FE's end
               for line in result.stdout.splitlines()[-3:])
    assert {"encoder_best_loss.h5", "decoder_best_loss.h5"} <= set(os.listdir(where))
