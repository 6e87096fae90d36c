import importlib.util
import json
import os
import re
import subprocess
import sys

import fastestimator as fe
import pytest

from pipeline_vae import presets
from pipeline_vae.builders import CONFIG_FILE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script(name):
    path = os.path.join(ROOT, "apphub", "presets", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # must not train or write anything
    return path, module


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_each_preset_script_builds_the_presets_configuration(name, small_mnist, tmp_path):
    _, module = _script(name)
    est = module.get_estimator(save_dir=str(tmp_path), data=small_mnist)
    assert isinstance(est, fe.Estimator) and os.listdir(tmp_path) == [CONFIG_FILE]  # nothing trained yet
    with open(tmp_path / CONFIG_FILE) as file:
        config = json.load(file)
    wanted = presets.PRESETS[name]["settings"]
    for key, value in wanted.items():  # each named setting reached the run (the rest keep their defaults)
        assert config[key] == value, key
    assert config["seed"] == 0 and est.system.total_epochs == wanted["epochs"]


def test_an_unknown_preset_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="preset: expected one of fast_latent2, best_latent2, best_latent50, got 'fastest'"):
        presets.settings_of("fastest")


@pytest.mark.slow
def test_a_preset_script_runs_with_python_and_says_how_long_fit_took(tmp_path, subprocess_env):
    path, _ = _script("fast_latent2")
    result = subprocess.run([sys.executable, path, "--save-dir", str(tmp_path / "run"), "--epochs", "1",
                             "--train-steps-per-epoch", "3"], env=subprocess_env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FastEstimator-Eval: step: 3; epoch: 1;" in result.stdout
    assert re.search(r"^fast_latent2: training took \d+\.\d s", result.stdout, re.M)
    with open(tmp_path / "run" / CONFIG_FILE) as file:
        config = json.load(file)
    assert (config["learning_rate"], config["widths"], config["epochs"]) == (3e-3, [16, 32], 1)


@pytest.mark.slow
def test_a_preset_script_trains_under_fastestimators_cli(tmp_path, subprocess_env):
    """FE's own `fastestimator train` passes get_estimator's arguments, here a shorter run of the preset."""
    path, _ = _script("fast_latent2")
    fe_cli = os.path.join(os.path.dirname(sys.executable), "fastestimator")
    result = subprocess.run([fe_cli, "train", path, "--save_dir", str(tmp_path / "run"), "--epochs", "1",
                             "--train_steps_per_epoch", "3"], env=subprocess_env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FastEstimator-Eval: step: 3; epoch: 1;" in result.stdout
    with open(tmp_path / "run" / CONFIG_FILE) as file:
        assert json.load(file)["learning_rate"] == 3e-3
