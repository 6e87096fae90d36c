"""`import pipeline_vae`: lazy names, and TensorFlow's C++ start-up noise silenced on machines without a GPU driver."""
import os
import subprocess
import sys

import pytest

STRAY = "Unable to register cuDNN factory"


def _stderr(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stderr


@pytest.mark.slow
def test_importing_the_package_first_silences_tensorflows_cuda_lines_on_a_cpu_machine():
    alone = _stderr("import tensorflow")
    assert STRAY in alone  # the control: TensorFlow 2.15 prints them on this machine by itself
    quiet = _stderr("import pipeline_vae, tensorflow")
    if os.path.exists("/proc/driver/nvidia"):  # a GPU machine keeps TensorFlow's diagnostics
        assert STRAY in quiet
    else:
        assert STRAY not in quiet and quiet.strip() == ""


def test_a_level_the_user_chose_is_kept():
    assert "level=1" in subprocess.run(
        [sys.executable, "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'; import pipeline_vae; "
         "print('level=' + os.environ['TF_CPP_MIN_LOG_LEVEL'])"], capture_output=True, text=True).stdout
