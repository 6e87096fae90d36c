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


class _StopAfter:
    """A progress object that interrupts the evaluation at its `n`-th update, as Ctrl-C or a killed job would."""
    def __init__(self, n: int) -> None:
        self.calls, self.n = 0, n

    def update(self, _count: int) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt


def test_an_interrupted_iw_bound_continues_to_the_same_numbers(vae, images, tmp_path, capsys):
    x, partial = images[:40], str(tmp_path / "partial.npz")
    whole = iw_bound(vae, x, 7, seed=3, max_decodes=35)  # 5 images per call: 8 calls
    with pytest.raises(KeyboardInterrupt):
        iw_bound(vae, x, 7, seed=3, max_decodes=35, progress=_StopAfter(4), resume_file=partial, save_every=0)
    with np.load(partial) as saved:
        assert int(saved["done"]) == 15  # saved after calls 1-3; the 4th was interrupted before its save
        np.testing.assert_array_equal(saved["values"], whole[:15])
    resumed = iw_bound(vae, x, 7, seed=3, max_decodes=35, resume_file=partial)
    assert "Resuming the IW bound at image 16 of 40" in capsys.readouterr().err
    np.testing.assert_array_equal(resumed, whole)  # bit for bit: values kept, noise generator put back
    assert not (tmp_path / "partial.npz").exists()  # removed once complete


def test_a_partial_iw_bound_of_another_evaluation_is_not_used(vae, images, tmp_path, capsys):
    x, partial = images[:40], str(tmp_path / "partial.npz")
    with pytest.raises(KeyboardInterrupt):
        iw_bound(vae, x, 7, seed=3, max_decodes=35, progress=_StopAfter(3), resume_file=partial, save_every=0)
    other_images = iw_bound(vae, images[40:80], 7, seed=3, max_decodes=35, resume_file=partial)
    assert "another evaluation" in capsys.readouterr().err
    np.testing.assert_array_equal(other_images, iw_bound(vae, images[40:80], 7, seed=3, max_decodes=35))
    with pytest.raises(KeyboardInterrupt):
        iw_bound(vae, x, 7, seed=3, max_decodes=35, progress=_StopAfter(3), resume_file=partial, save_every=0)
    other_seed = iw_bound(vae, x, 7, seed=4, max_decodes=35, resume_file=partial)
    assert "another evaluation" in capsys.readouterr().err
    np.testing.assert_array_equal(other_seed, iw_bound(vae, x, 7, seed=4, max_decodes=35))
    (tmp_path / "partial.npz").write_bytes(b"not an npz file")
    np.testing.assert_array_equal(iw_bound(vae, x, 7, seed=4, max_decodes=35, resume_file=partial), other_seed)
    assert "not a partial IW evaluation" in capsys.readouterr().err


def test_iw_bound_saves_its_progress_only_every_save_every_seconds(vae, images, tmp_path):
    partial = tmp_path / "partial.npz"
    with pytest.raises(KeyboardInterrupt):
        iw_bound(vae, images[:40], 7, seed=3, max_decodes=35, progress=_StopAfter(4), resume_file=str(partial),
                 save_every=3600)
    assert not partial.exists()  # four calls in well under an hour: nothing saved yet
    with pytest.raises(ValueError, match="save_every must be a non-negative number of seconds"):
        iw_bound(vae, images[:40], 7, resume_file=str(partial), save_every=-1)
