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
    with pytest.raises(ValueError, match="preset: expected one of fast_latent2, best_latent2, best_latent50, "
                                         "literature_vamp, got 'fastest'"):
        presets.settings_of("fastest")


def test_the_literature_preset_is_the_literature_tables_vamp_variant(small_mnist):
    """`make reproduce-literature_vamp` trains what the published table's `vamp` rows trained: the same resolved run
    (model, data protocol, optimiser, budget, evaluation) and the same op graph, its warm-up given as a setting there
    and as an op here."""
    from pipeline_vae.ablation.spec import load_spec
    from pipeline_vae.resolve import resolve
    from pipeline_vae.slots import graph_for
    spec = load_spec(os.path.join(ROOT, "apphub", "ablations", "literature.yaml"), check_runs=False)
    variant = spec.variant("vamp")
    ops = variant.build_ops()
    table, _ = resolve({**variant.settings, **spec.budget, **spec.eval, "seed": 0, "resume": True}, small_mnist,
                       ops)  # as pipeline_vae.ablation.trial resolves a trial
    preset, _ = resolve({**presets.settings_of("literature_vamp"), "seed": 0}, small_mnist)
    mine, theirs = preset.to_json(), table.to_json()
    differ = {key for key in set(mine) | set(theirs) if mine.get(key) != theirs.get(key)}
    assert differ == {"loss", "kl_warmup", "n_images"}, differ  # the evaluation's images: all 10000 either way
    assert (theirs["n_images"], mine["n_images"], preset.kl_warmup) == (10000, None, 100)
    graphs = graph_for(table, ops), graph_for(preset)
    assert graphs[0].describe() == graphs[1].describe()
    (warm_table, ), (warm_preset, ) = ([op for name, op in g.named_ops if name == "loss"] for g in graphs)
    assert (warm_table.warmup_epochs, warm_table.beta, warm_table.inputs) == (
        warm_preset.warmup_epochs, warm_preset.beta, warm_preset.inputs)


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
