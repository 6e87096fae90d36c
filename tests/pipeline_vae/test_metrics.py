import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import active_units, evaluate, format_table, iw_bound


@pytest.fixture(scope="module")
def vae(trained_dir):
    return CVAE.load(trained_dir)


@pytest.fixture(scope="module")
def images(mnist):
    return mnist.x_test[:300]


def test_active_units_uses_the_variance_of_the_means():
    rng = np.random.default_rng(0)
    means = np.stack([rng.normal(0, 1, 5000), rng.normal(0, 0.05, 5000), np.full(5000, 3.0)], axis=1)
    assert active_units(means) == 1  # variances ~1, ~0.0025, 0


def test_iw_bound_is_above_the_elbo_and_grows_with_k(vae, images):
    bounds = {k: iw_bound(vae, images, k, seed=0).mean() for k in (1, 10, 100)}
    elbo = evaluate(vae, images, iw_samples=0, show_progress=False)
    assert abs(bounds[1] - elbo["elbo_mc"]) < 4 * elbo["elbo_mc_se"]  # K = 1 is the ELBO
    assert bounds[1] < bounds[10] < bounds[100]
    assert bounds[100] - bounds[1] > 0.5  # a real tightening, in nats


def test_iw_bound_chunking_does_not_change_the_value(vae, images):
    whole = iw_bound(vae, images[:20], 50, seed=4, max_decodes=5000)
    chunked = iw_bound(vae, images[:20], 50, seed=4, max_decodes=30)  # 1 image per call, samples in chunks of 30
    assert whole.shape == chunked.shape == (20, )
    diff = whole - chunked  # different noise draws, same quantity: the paired mean difference is noise only
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(diff))
    assert not np.array_equal(whole, chunked)  # (the draws really differ)


def test_analytic_and_mc_elbo_agree_within_mc_error(vae, images):
    m = evaluate(vae, images, iw_samples=0, show_progress=False)
    assert abs(m["elbo_analytic"] - m["elbo_mc"]) < 4 * m["elbo_mc_se"]  # (each term is pinned in
    # test_metrics_reference.py against NumPy; here the two KL estimates agree on a trained model)
    assert m["kl"] > 0 and m["reconstruction"] < 0 and m["n_images"] == 300


def test_evaluate_reports_everything_and_is_seeded(vae, images):
    first = evaluate(vae, images[:50], iw_samples=5, seed=2, show_progress=False)
    second = evaluate(vae, images[:50], iw_samples=5, seed=2, show_progress=False)
    assert first["iw_bound"] == second["iw_bound"] and first["elbo_mc"] == second["elbo_mc"]
    assert first["iw_bound"] >= first["elbo_mc"] - 4 * first["elbo_mc_se"]
    assert 0 <= first["active_units"] <= 2
    table = format_table(first)
    assert "IW bound, K=5 (nats)" in table and f"{first['elbo_analytic']:.2f}" in table


@pytest.mark.parametrize("kwargs, message", [(dict(iw_samples=-1), "iw_samples must be a non-negative integer"),
                                             (dict(iw_samples=2.5), "iw_samples must be a non-negative integer")])
def test_bad_arguments(vae, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(vae, images, **kwargs)


def test_the_iw_bound_reports_progress_on_stderr_only_when_asked(vae, images, capsys):
    evaluate(vae, images[:20], iw_samples=2, show_progress=True)
    err = capsys.readouterr().err
    assert "IW bound K=2" in err and "20/20" in err  # tqdm's bar, closed at 100%
    evaluate(vae, images[:20], iw_samples=2, show_progress=False)
    assert capsys.readouterr().err == ""
