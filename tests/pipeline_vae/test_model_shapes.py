"""Images a model family cannot take are refused before TensorFlow starts."""
import subprocess
import sys

import numpy as np
import pytest

from pipeline_vae.model_shapes import check_family


def test_each_family_takes_what_it_can_build():
    check_family("conv", 2, None, (7, 7, 1))  # 7 -> 3 -> 1: two stride-2 3x3 convolutions fit
    check_family("mlp", 2, None, (1, 1, 1))  # an MLP takes any size
    with pytest.raises(ValueError, match=r"image height 6 is too small for 2 stride-2 convolutions \(widths \[32, "
                       r"64\]\); use fewer widths"):
        check_family("conv", 2, None, (6, 7, 1))  # 6 -> 2: the second one does not fit
    with pytest.raises(ValueError, match=r"image width 2 is too small for 1 stride-2 convolutions"):
        check_family("conv", 2, (16, ), (3, 2, 1))
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        check_family("resnet", 2, None, (28, 28, 1))


PROBE = """
import sys
from pipeline_vae.cli import main
code = main(["train", "--data", sys.argv[1], "--save-dir", sys.argv[2], "--epochs", "1"])
print(code, "tensorflow" in sys.modules)
"""


def test_tiny_images_are_refused_without_starting_tensorflow(tmp_path):
    data = tmp_path / "ones.npz"
    np.savez(data, x_train=np.zeros((50, 1, 1), np.uint8), x_test=np.zeros((10, 1, 1), np.uint8))
    result = subprocess.run([sys.executable, "-c", PROBE, str(data), str(tmp_path / "run")], capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stdout + result.stderr
    assert result.stderr.strip() == ("pipeline-vae: error: image height 1 is too small for 2 stride-2 convolutions "
                                     "(widths [32, 64]); use fewer widths")
    assert not (tmp_path / "run").exists()
