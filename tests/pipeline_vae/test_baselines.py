import math
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline_vae.baselines import (logistic_level_log_likelihood, pixel_bernoulli_log_likelihood,
                                    pixel_histogram_log_likelihood)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pixel_histogram_by_hand():
    # pixel 0 is 0 in 3 of 4 training images and 9 in one; pixel 1 is always 255
    train = np.array([[0, 255], [0, 255], [9, 255], [0, 255]], np.uint8)
    test = np.array([[0, 255], [9, 255], [7, 0]], np.uint8)
    alpha = 0.5
    denominator = 4 + 256 * alpha
    expected = [math.log(3.5 / denominator) + math.log(4.5 / denominator),
                math.log(1.5 / denominator) + math.log(4.5 / denominator),
                math.log(0.5 / denominator) + math.log(0.5 / denominator)]
    np.testing.assert_allclose(pixel_histogram_log_likelihood(train, test, alpha), expected, rtol=1e-12)


def test_pixel_bernoulli_by_hand():
    train = np.array([[200, 10], [10, 10], [130, 127]], np.uint8)  # 127/255 < 0.5 < 128/255 < 130/255
    test = np.array([[255, 0], [0, 128]], np.uint8)
    p = np.array([(2 + 0.5) / 4, (0 + 0.5) / 4])  # ones per pixel: 2 and 0 of 3, pseudo-count 0.5
    expected = [math.log(p[0]) + math.log(1 - p[1]), math.log(1 - p[0]) + math.log(p[1])]
    np.testing.assert_allclose(pixel_bernoulli_log_likelihood(train, test), expected, rtol=1e-12)


def _logistic_cdf(t):
    return 1.0 / (1.0 + math.exp(-t))


def test_logistic_on_all_values_and_on_the_used_levels_by_hand():
    levels = np.array([0, 64, 255], np.uint8)
    images = np.array([[0, 64, 255, 64]], np.uint8)
    location = np.array([[10.0, 70.0, 250.0, 64.0]])
    scale = np.array([[5.0, 8.0, 3.0, 20.0]])
    per_value, per_level = logistic_level_log_likelihood(images, location, scale, levels)
    value_mass = [_logistic_cdf((0.5 - 10) / 5),
                  _logistic_cdf((64.5 - 70) / 8) - _logistic_cdf((63.5 - 70) / 8),
                  1 - _logistic_cdf((254.5 - 250) / 3),
                  _logistic_cdf(0.5 / 20) - _logistic_cdf(-0.5 / 20)]
    level_mass = [_logistic_cdf((32 - 10) / 5),  # cells: (-inf, 32], (32, 159.5], (159.5, inf)
                  _logistic_cdf((159.5 - 70) / 8) - _logistic_cdf((32 - 70) / 8),
                  1 - _logistic_cdf((159.5 - 250) / 3),
                  _logistic_cdf(95.5 / 20) - _logistic_cdf(-32 / 20)]
    np.testing.assert_allclose(per_value, [sum(math.log(m) for m in value_mass)], rtol=1e-10)
    np.testing.assert_allclose(per_level, [sum(math.log(m) for m in level_mass)], rtol=1e-10)


def test_logistic_mass_far_in_either_tail_stays_finite_and_right():
    # the value 128 sits ~1200 scales above one location and below the other: F(b) - F(a) in floating point is 0
    images = np.array([[128, 128]], np.uint8)
    location, scale = np.array([[8.0, 248.0]]), np.array([[0.1, 0.1]])
    per_value, _ = logistic_level_log_likelihood(images, location, scale, np.array([0, 128, 255]))
    # in either tail the mass is exp(-1195) - exp(-1205) (F(t) = exp(t) there, to double precision)
    one_pixel = -1195.0 + math.log1p(-math.exp(-10.0))
    np.testing.assert_allclose(per_value, [2 * one_pixel], rtol=1e-12)


def test_bad_input_names_the_argument():
    good = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="train must be a non-empty uint8"):
        pixel_histogram_log_likelihood(good.astype(np.float32), good)
    with pytest.raises(ValueError, match="same size"):
        pixel_bernoulli_log_likelihood(good, np.zeros((2, 4), np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        pixel_bernoulli_log_likelihood(good, good, threshold=1.5)
    with pytest.raises(ValueError, match="scale positive"):
        logistic_level_log_likelihood(np.array([[3]], np.uint8), np.ones((1, 1)), np.zeros((1, 1)), [0, 3])
    with pytest.raises(ValueError, match="levels must be integer grey levels in 0..255"):
        logistic_level_log_likelihood(np.array([[3]], np.uint8), np.ones((1, 1)), np.ones((1, 1)), [3, 300])
    with pytest.raises(ValueError, match="levels must hold"):
        logistic_level_log_likelihood(np.array([[3]], np.uint8), np.ones((1, 1)), np.ones((1, 1)), [0, 255])


@pytest.mark.slow
def test_tool_reports_the_references_of_real_digits(tmp_path):
    out = str(tmp_path / "digits")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_digits.py"), out], check=True,
                   capture_output=True)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "likelihood_references.py"), "--data", out],
                          capture_output=True, text=True, check=True)
    assert "per-pixel histogram, 256 values" in done.stdout and "bits/dim" in done.stdout
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "likelihood_references.py"), "--data", out,
                          "--runs", str(tmp_path / "missing")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "likelihood_references:" in bad.stderr
