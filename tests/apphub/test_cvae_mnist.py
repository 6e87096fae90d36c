import importlib.util
import os
import subprocess
import sys

import fastestimator as fe
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "apphub", "cvae_mnist", "cvae_mnist_tf.py")


def test_import_has_no_side_effects_and_exposes_get_estimator(small_mnist, tmp_path):
    spec = importlib.util.spec_from_file_location("cvae_mnist_tf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # must not train or write anything
    est = module.get_estimator(epochs=2, batch_size=8, train_steps_per_epoch=2, save_dir=str(tmp_path))
    assert isinstance(est, fe.Estimator)
    assert est.system.total_epochs == 2 and est.system.train_steps_per_epoch == 2
    assert os.listdir(tmp_path) == ["cvae_config.json"]  # nothing trained, nothing else written


@pytest.mark.slow
def test_runs_under_fastestimators_own_cli(tmp_path, subprocess_env):
    fe_cli = os.path.join(os.path.dirname(sys.executable), "fastestimator")
    result = subprocess.run([fe_cli, "train", SCRIPT, "--epochs", "1", "--batch_size", "8", "--train_steps_per_epoch",
                             "2", "--save_dir", str(tmp_path / "run")],
                            env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FastEstimator-Eval: step: 2; epoch: 1;" in result.stdout
    if not os.path.exists("/proc/driver/nvidia"):  # a CPU machine: no stray CUDA start-up lines (see test_package.py)
        assert "Unable to register" not in result.stderr
    assert {"encoder_best_loss.h5", "decoder_best_loss.h5"} <= set(os.listdir(tmp_path / "run"))
