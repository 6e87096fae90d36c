"""A run folder is data: the project's loaders rebuild the models from cvae_config.json and read only weights."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae.inference import CVAE
from pipeline_vae.model_files import UnsafeModelError, code_layers, load_run_model
from pipeline_vae.run_config import RunConfig

#: Writes a copy of the encoder wrapped with a Lambda layer that creates SENTINEL when it runs (the attack in issue 25),
#: in a separate process, so building it (Keras calls the Lambda once while wiring the model) cannot touch this one.
PLANT = """
import os, sys
import tensorflow as tf
path, sentinel = sys.argv[1], sys.argv[2]
inner = tf.keras.models.load_model(path, compile=False)
def payload(t, sentinel=sentinel):
    import pathlib
    pathlib.Path(sentinel).write_text("planted code ran")
    return t
out = tf.keras.layers.Lambda(payload)(inner.output)
tf.keras.Model(inner.input, out, name=inner.name).save(path, save_format="h5")
os.remove(sentinel)
"""


def plant_lambda(run, sentinel, env):
    subprocess.run([sys.executable, "-c", PLANT, str(run / "encoder_best_loss.h5"), str(sentinel)], check=True,
                   env=env, capture_output=True)
    assert not sentinel.exists()


@pytest.fixture
def planted(trained_dir, tmp_path, subprocess_env):
    run, sentinel = tmp_path / "stranger", tmp_path / "SENTINEL"
    shutil.copytree(trained_dir, run)
    for name in ("metrics.json", "manifold.png"):  # (written there by other tests' evaluate and plot)
        if os.path.exists(run / name):
            os.remove(run / name)
    plant_lambda(run, sentinel, subprocess_env)
    return run, sentinel


def test_the_rebuilt_models_compute_what_load_model_does(trained_dir):
    """Rebuilt from the config with the file's weights: the same outputs as Keras' own loader on the same file."""
    config = RunConfig.read(trained_dir)
    x = np.random.default_rng(0).random((5, 28, 28, 1), np.float32)
    z = np.random.default_rng(1).standard_normal((5, config.latent_dim)).astype(np.float32)
    for kind, inputs in (("encoder", x), ("decoder", z)):
        keras_own = tf.keras.models.load_model(config.path(trained_dir, kind), compile=False)
        ours = load_run_model(trained_dir, config, kind)
        assert ours is not keras_own and code_layers(config.path(trained_dir, kind)) == []
        np.testing.assert_array_equal(ours(inputs).numpy(), keras_own(inputs).numpy())


def test_a_planted_lambda_layer_is_refused_and_never_runs(planted):
    run, sentinel = planted
    with pytest.raises(UnsafeModelError, match=r"encoder model .*encoder_best_loss.h5 holds layers that run code "
                       r"\(lambda\w* \(Lambda\)\).*--trust-run-code"):
        CVAE.load(str(run))
    assert not sentinel.exists()


def test_the_trust_flag_loads_the_files_own_architecture(planted):
    """With trust_code the file's architecture is used, so its code does run: the flag means what it says."""
    run, sentinel = planted
    vae = CVAE.load(str(run), trust_code=True)
    vae.encode(np.zeros((1, 28, 28), np.uint8))
    assert sentinel.read_text() == "planted code ran"


def test_weights_that_do_not_fit_the_config_are_one_line(trained_dir, tmp_path):
    """Same layer classes, other sizes (a folder whose config was edited, stamps removed): refused by load_weights."""
    import h5py
    from pipeline_vae.run_config import STAMP_ATTRIBUTE
    run = tmp_path / "edited"
    shutil.copytree(trained_dir, run)
    for name in ("encoder_best_loss.h5", "decoder_best_loss.h5"):
        with h5py.File(run / name, "a") as file:
            del file.attrs[STAMP_ATTRIBUTE]
    config = json.loads((run / "cvae_config.json").read_text())
    config["widths"] = [8, 16]
    (run / "cvae_config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeModelError, match=r"^encoder model .* does not fit the architecture its run folder's "
                       r"cvae_config.json records \(model conv, latent_dim 2, widths \(8, 16\)\): .*--trust-run-code"):
        CVAE.load(str(run))


def test_the_cli_refuses_a_planted_folder_in_one_line(planted, run_cli):
    run, sentinel = planted
    for command in ("evaluate", "plot"):
        result = run_cli([command, "--save-dir", str(run), "--n-images", "20"])
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("pipeline-vae: error: encoder model ") and "holds layers that run code" in lines[-1]
        assert "Traceback" not in result.stderr
        assert not sentinel.exists()
        assert not os.path.exists(run / "metrics.json") and not os.path.exists(run / "manifold.png")
    trusted = run_cli(["evaluate", "--save-dir", str(run), "--n-images", "20", "--iw-samples", "2",
                       "--trust-run-code"])
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert sentinel.read_text() == "planted code ran"  # the flag loads the file's own architecture, code and all
