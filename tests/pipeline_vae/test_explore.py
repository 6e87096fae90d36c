"""Looking inside a model (`pipeline_vae.explore`, `CVAE.interpolate(spherical=True)`, `CVAE.traverse`,
`metrics.per_image_elbo`), each checked against a NumPy computation written here."""
import json
import math
import os
import shutil

import numpy as np
import pytest

from pipeline_vae import explore
from pipeline_vae.inference import CVAE, slerp
from pipeline_vae.metrics import evaluate, per_image_elbo
from tests.figure_checks import texts_outside_the_canvas
from tests.numpy_reference import np_log_normal


@pytest.fixture(scope="module")
def vae(trained_dir):
    return CVAE.load(trained_dir)


def test_slerp_follows_the_great_circle():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    points = slerp(a, b, np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(points[0], a, atol=1e-7)
    np.testing.assert_allclose(points[2], b, atol=1e-7)
    # W = 90 degrees: sin(W/2) / sin(W) = 1/sqrt(2) of each end (the straight line's midpoint is (0.5, 1, 0))
    np.testing.assert_allclose(points[1], [1 / math.sqrt(2), 2 / math.sqrt(2), 0.0], atol=1e-6)
    same_way = slerp(a, 3 * a, np.array([0.5]))  # no single arc: the straight line
    np.testing.assert_allclose(same_way[0], 2 * a, atol=1e-6)


def test_spherical_interpolation_decodes_the_arc_between_the_means(vae, mnist):
    a, b = mnist.x_test[0], mnist.x_test[1]
    mean_a, mean_b = vae.encode(a)[0][0].astype(np.float64), vae.encode(b)[0][0].astype(np.float64)
    omega = math.acos(np.dot(mean_a, mean_b) / (np.linalg.norm(mean_a) * np.linalg.norm(mean_b)))
    t = np.linspace(0, 1, 5)[:, None]
    arc = (np.sin((1 - t) * omega) * mean_a + np.sin(t * omega) * mean_b) / math.sin(omega)
    np.testing.assert_allclose(vae.interpolate(a, b, 5, spherical=True), vae.decode(arc.astype(np.float32)),
                               atol=1e-5)
    line = (1 - t) * mean_a + t * mean_b
    np.testing.assert_allclose(vae.interpolate(a, b, 5), vae.decode(line.astype(np.float32)), atol=1e-5)


def test_traverse_sweeps_one_unit_from_the_posterior_mean(vae, mnist):
    mean = vae.encode(mnist.x_test[3])[0][0]
    values = [-2.0, 0.0, 1.5]
    z = np.repeat(mean[None], 3, axis=0)
    z[:, 1] = values
    np.testing.assert_allclose(vae.traverse(mnist.x_test[3], 1, values), vae.decode(z), atol=1e-6)
    with pytest.raises(ValueError, match=r"^unit: expected an integer in \[0, 2\), got 2$"):
        vae.traverse(mnist.x_test[3], 2, values)
    with pytest.raises(ValueError, match="^values: expected a non-empty list of finite numbers$"):
        vae.traverse(mnist.x_test[3], 0, [0.0, float("nan")])
    with pytest.raises(ValueError, match="^image: expected one image"):
        vae.traverse(mnist.x_test[:2], 0, values)


def test_per_unit_kl_sums_to_the_models_kl(vae, mnist):
    """With the standard normal prior and no flow the units' KLs add up to evaluate's closed-form KL."""
    images = mnist.x_test[:400]
    mean, logvar = vae.encode(images)
    kl = explore.unit_kl(mean, logvar)
    assert kl.shape == (2, ) and np.all(kl > 0)
    assert kl.sum() == pytest.approx(evaluate(vae, images, iw_samples=0, show_progress=False)["kl"], rel=1e-4)


def test_per_image_elbo_matches_numpy(vae, mnist):
    """The mean over S draws of log p(x|z) + log N(z; 0, I) - log q(z|x), written out in NumPy with the documented
    noise."""
    images, samples, seed = mnist.x_test[:30], 4, 5
    x = vae.prepare(images).reshape(30, -1).astype(np.float64)
    mean, logvar = (v.astype(np.float64) for v in vae.encode(images))
    eps = np.random.default_rng(seed).standard_normal((samples, 30, 2)).astype(np.float32)
    expected = np.zeros(30)
    for s in range(samples):
        z = (mean + np.exp(logvar / 2) * eps[s]).astype(np.float32)
        logits = vae.decode(z, probs=False).reshape(30, -1).astype(np.float64)
        log_px = np.sum(x * logits - np.logaddexp(0.0, logits), axis=1)
        expected += (log_px + np_log_normal(z, 0.0, 0.0) - np_log_normal(z, mean, logvar)) / samples
    np.testing.assert_allclose(per_image_elbo(vae, images, samples=samples, seed=seed), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="^samples must be a positive integer, got 0$"):
        per_image_elbo(vae, images, samples=0)


def test_explore_run_writes_the_pictures_and_the_numbers_behind_them(trained_dir, mnist, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(trained_dir, run)
    images = mnist.x_test[:200]
    summary = explore.explore_run(run, images, seed=1, extremes=5, samples=3)
    names = sorted(os.path.basename(p) for p in summary["written"])
    assert names == ["best_worst.png", "explore.json", "interpolation.png", "latent_units.png", "traversals.png"]
    with open(os.path.join(run, "explore.json")) as file:
        saved = json.load(file)
    assert saved == {k: v for k, v in summary.items() if k != "written"}
    vae = CVAE.load(run)
    mean, logvar = vae.encode(images)
    kl = 0.5 * np.mean(mean.astype(np.float64)**2 + np.exp(logvar) - 1 - logvar, axis=0)
    assert saved["units_by_kl"] == [int(u) for u in np.argsort(-kl)]
    np.testing.assert_allclose(saved["kl_per_unit"], kl, rtol=1e-4)
    assert saved["active_units"] == int(np.sum(np.var(mean.astype(np.float64), axis=0) > 0.01))
    assert saved["kl_is_the_models"] is True
    elbo = per_image_elbo(vae, images, samples=3, seed=1)
    assert [w["index"] for w in saved["worst"]] == [int(i) for i in np.argsort(elbo)[:5]]
    assert [b["index"] for b in saved["best"]] == [int(i) for i in np.argsort(elbo)[::-1][:5]]
    assert saved["best"][0]["elbo"] == pytest.approx(elbo.max()) and saved["elbo_mean"] == pytest.approx(elbo.mean())
    pairs = np.array(saved["interpolation_pairs"])
    assert pairs.shape == (3, 2) and len(set(pairs.ravel())) == 6
    with pytest.raises(ValueError, match="^--format: expected one of png, pdf, svg, got 'gif'$"):
        explore.explore_run(run, images, fmt="gif")
    with pytest.raises(ValueError, match="^units: expected an integer >= 1, got 0$"):
        explore.explore_run(run, images, units=0)


def test_the_exploration_figures_keep_their_labels_inside(vae, mnist):
    x = vae.prepare(mnist.x_test[:50])
    mean, logvar = vae.encode(x)
    kl = explore.unit_kl(mean, logvar)
    elbo = per_image_elbo(vae, x, samples=2)
    for fig in (explore.interpolation_figure(vae, x, [(0, 1), (2, 3)], steps=5),
                explore.traversal_figure(vae, x[0], [1, 0], kl),
                explore.units_figure(kl, np.var(mean, axis=0)),
                explore.units_figure(np.linspace(2, 0, 64), np.linspace(1, 0, 64)),  # many units: rotated ticks
                explore.best_worst_figure(vae, x, elbo, n=4)):
        assert texts_outside_the_canvas(fig) == []
