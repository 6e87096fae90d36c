import csv
import os

import numpy as np
import pytest
from PIL import Image

from pipeline_vae import plots
from pipeline_vae.inference import CVAE
from tests.figure_checks import texts_outside_the_canvas


def png_size(path):
    assert os.path.getsize(path) > 1000
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


@pytest.fixture(scope="module")
def vae(trained_dir):
    return CVAE.load(trained_dir)


def test_tile_places_images_on_a_padded_grid():
    grid = plots.tile(np.ones((3, 2, 2), np.float32), rows=2, cols=2, pad=1)
    assert grid.shape == (7, 7)
    assert grid.sum() == 12  # 3 images of 4 ones; padding and the empty cell stay 0


def test_sample_grid_and_gif(tmp_path):
    frames = []
    for epoch in range(3):
        images = np.full((16, 28, 28), epoch / 2, np.float32)
        frames.append(plots.plot_sample_grid(images, str(tmp_path / f"epoch_{epoch:03d}.png"), f"epoch {epoch}"))
    assert png_size(frames[0]) == (400, 430)
    gif = plots.write_gif(frames, str(tmp_path / "samples.gif"))
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 3


def test_manifold(vae, tmp_path):
    assert png_size(plots.plot_manifold(vae, str(tmp_path / "m.png"), n=10)) == (800, 800)


def test_manifold_needs_two_latent_dims(tmp_path):
    from pipeline_vae.models import build_decoder, build_encoder
    with pytest.raises(ValueError, match="needs latent size 2, this model has 5"):
        plots.plot_manifold(CVAE(build_encoder(5), build_decoder(5)), str(tmp_path / "m.png"))


def test_latent_scatter_2d_and_pca(vae, mnist, tmp_path):
    assert png_size(plots.plot_latent_scatter(vae, mnist.x_test[:300], mnist.y_test[:300],
                                              str(tmp_path / "s.png"))) == (800, 700)
    from pipeline_vae.models import build_decoder, build_encoder
    wide = CVAE(build_encoder(6), build_decoder(6))
    assert png_size(plots.plot_latent_scatter(wide, mnist.x_test[:300], mnist.y_test[:300],
                                              str(tmp_path / "p.png"))) == (800, 700)
    with pytest.raises(ValueError, match=r"labels: expected shape \(300,\)"):
        plots.plot_latent_scatter(vae, mnist.x_test[:300], mnist.y_test[:10], str(tmp_path / "x.png"))


def test_principal_components_of_a_line():
    t = np.linspace(-1, 1, 50)
    points = np.stack([t, 2 * t, np.zeros_like(t)], axis=1)
    projection, share = plots.principal_components(points)
    assert share[0] == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(projection[:, 0]), np.abs(t) * np.sqrt(5), atol=1e-9)


def test_reconstructions(vae, mnist, tmp_path):
    assert png_size(plots.plot_reconstructions(vae, mnist.x_test[:8], str(tmp_path / "r.png"))) == (700, 400)


def test_training_curves_from_fe_csv_log(tmp_path):
    log = tmp_path / "train_log.csv"
    with open(log, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["mode", "step", "epoch", "loss", "elbo"])
        writer.writerows([["train", 1, 1, 540.0, ""], ["train", 100, 1, 200.0, ""], ["eval", 100, 1, 180.0, -180.0],
                          ["train", 200, 2, 170.0, ""], ["eval", 200, 2, 160.0, -160.0]])
    parsed = plots.read_log(str(log))
    assert parsed["loss"] == [(1, 1, 540.0), (100, 1, 200.0), (200, 2, 170.0)]
    assert parsed["elbo"] == [(100, 1, -180.0), (200, 2, -160.0)]
    assert png_size(plots.plot_training_curves(str(log), str(tmp_path / "c.png"))) == (1000, 400)


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="training log .* does not exist"):
        plots.plot_training_curves(str(tmp_path / "none.csv"), str(tmp_path / "c.png"))


def test_plot_run_on_a_trained_dir(trained_dir, mnist):
    """Everything from a real training run's folder: its own CSV log and its per-epoch grids (1 epoch -> 2 frames)."""
    written = plots.plot_run(trained_dir, mnist.x_test[:500], mnist.y_test[:500])
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["latent_scatter.png", "manifold.png", "reconstructions.png", "samples.gif",
                     "training_curves.png"]
    with Image.open(os.path.join(trained_dir, "samples.gif")) as gif:
        assert gif.n_frames == 2  # the initial grid plus one per epoch
    assert plots.read_log(os.path.join(trained_dir, "train_log.csv"))["elbo"][0][1] == 1


def _sigmoid(t):
    return 1 / (1 + np.exp(-t))


def test_reconstruction_rows_are_the_images_given_and_their_decodings(vae, mnist):
    """What the figure draws, read back from its axes: row 1 the images given (0..1), row 2 them binarized at 0.5,
    row 3 the decoder's probabilities at the posterior mean (computed here with the Keras models), row 4 those > 0.5."""
    images = mnist.x_test[10:15]
    fig = plots.reconstructions_figure(vae, images)
    n = len(images)
    drawn = [[np.asarray(fig.axes[r * n + c].images[0].get_array()) for c in range(n)] for r in range(4)]
    x = (images >= 128).astype(np.float32)[..., None]
    mean = vae.encoder(x).numpy()[:, :2]
    probs = _sigmoid(vae.decoder(mean).numpy()[..., 0].astype(np.float64))
    for c in range(n):
        np.testing.assert_allclose(drawn[0][c], images[c] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(drawn[1][c], x[c, ..., 0])
        np.testing.assert_allclose(drawn[2][c], probs[c], atol=1e-5)
        np.testing.assert_array_equal(drawn[3][c], (probs[c] > 0.5).astype(np.float32))
    assert [fig.axes[r * n].get_ylabel() for r in range(4)] == ["original", "binarized", "decoded mean",
                                                                "decoded > 0.5"]


def test_the_manifold_corners_decode_to_the_z_they_are_labelled_with(vae):
    from statistics import NormalDist
    n = 20
    ax = plots.manifold_figure(vae, n=n).axes[0]
    canvas = np.asarray(ax.images[0].get_array())
    assert canvas.shape == (n * 28, n * 28)

    def labels(ticks, texts):  # column or row index -> the z value written at its centre
        return {int(round((pos - 13.5) / 28)): float(text.get_text()) for pos, text in zip(ticks, texts)}

    x_labels, y_labels = labels(ax.get_xticks(), ax.get_xticklabels()), labels(ax.get_yticks(), ax.get_yticklabels())
    q = NormalDist().inv_cdf(0.95)
    assert {0, n - 1} <= set(x_labels) and {0, n - 1} <= set(y_labels)
    assert (x_labels[0], x_labels[n - 1], y_labels[0], y_labels[n - 1]) == pytest.approx((-q, q, q, -q), abs=0.006)
    for row in (0, n - 1):
        for col in (0, n - 1):
            cell = canvas[row * 28:(row + 1) * 28, col * 28:(col + 1) * 28]
            z = np.array([[x_labels[col], y_labels[row]]], np.float32)
            decoded = _sigmoid(vae.decoder(z).numpy()[0, ..., 0].astype(np.float64))
            mirrored = _sigmoid(vae.decoder(z * [[1, -1]]).numpy()[0, ..., 0].astype(np.float64))
            error, mirror_error = np.abs(cell - decoded).max(), np.abs(cell - mirrored).max()
            assert error < 0.02, (row, col)  # (the labels are rounded to 2 decimals)
            assert mirror_error > 5 * error, (row, col)  # the check can tell the two z[1] apart


def test_the_scatter_places_each_image_at_its_mean_with_one_colour_per_label(vae, mnist):
    images, labels = mnist.x_test[:400], mnist.y_test[:400]
    collection = plots.latent_scatter_figure(vae, images, labels).axes[0].collections[0]
    collection.update_scalarmappable()  # the colours as drawn, from the colour map
    colours = [tuple(np.round(c, 6)) for c in collection.get_facecolors()]
    assert len(colours) == len(images)
    mean = vae.encoder((images >= 128).astype(np.float32)[..., None]).numpy()[:, :2]
    np.testing.assert_allclose(collection.get_offsets(), mean, atol=1e-5)
    by_label = {label: {c for c, lab in zip(colours, labels) if lab == label} for label in range(10)}
    assert all(len(found) == 1 for found in by_label.values()), by_label
    assert len({next(iter(found)) for found in by_label.values()}) == 10  # ten labels, ten colours


def test_principal_components_of_points_far_from_the_origin():
    """Points on a line through (100, -50, 7) along (3, 4, 0)/5, with a little spread across it: the first component
    is that direction (up to sign) and explains nearly everything, as NumPy's covariance eigenvectors (computed here)
    say; the projections are centred."""
    rng = np.random.default_rng(0)
    t = rng.standard_normal(500) * 10
    direction = np.array([3.0, 4.0, 0.0]) / 5
    points = np.array([100.0, -50.0, 7.0]) + t[:, None] * direction + rng.standard_normal((500, 3)) * 0.1
    projected, share = plots.principal_components(points)
    values, vectors = np.linalg.eigh(np.cov(points.T))
    expected = (points - points.mean(axis=0)) @ vectors[:, ::-1][:, :2]
    for i in range(2):
        sign = np.sign(expected[:, i] @ projected[:, i])
        np.testing.assert_allclose(projected[:, i], sign * expected[:, i], atol=1e-8)
    np.testing.assert_allclose(share, values[::-1][:2] / values.sum(), rtol=1e-8)
    np.testing.assert_allclose(projected.mean(axis=0), 0.0, atol=1e-9)


def _write_log(path, rows):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["mode", "step", "epoch", "loss", "elbo"])
        writer.writerows(rows)
    return str(path)


def test_the_curves_reach_every_logged_step_and_keep_their_labels_inside(tmp_path):
    """Every train row is on the loss curve (up to the epoch's last step, 7, which is no multiple of log_steps 3), every
    eval row on the ELBO curve, and no label is clipped: the y labels of the seed's layout left the canvas."""
    log = _write_log(tmp_path / "log.csv", [["train", 1, 1, 540.0, ""], ["train", 3, 1, 300.0, ""],
                                            ["train", 6, 1, 200.0, ""], ["train", 7, 1, 190.0, ""],
                                            ["eval", 7, 1, 185.0, -185.0], ["train", 9, 2, 170.0, ""],
                                            ["train", 14, 2, 150.0, ""], ["eval", 14, 2, 160.0, -160.0]])
    fig = plots.training_curves_figure(log, split="validation")
    loss_ax, elbo_ax = fig.axes
    assert list(loss_ax.lines[0].get_xdata()) == [1, 3, 6, 7, 9, 14]
    assert list(loss_ax.lines[0].get_ydata()) == [540.0, 300.0, 200.0, 190.0, 170.0, 150.0]
    assert list(elbo_ax.lines[0].get_xdata()) == [7, 14] and list(elbo_ax.lines[0].get_ydata()) == [-185.0, -160.0]
    assert elbo_ax.get_ylabel() == "validation ELBO (nats)" and elbo_ax.get_title() == "Validation ELBO"
    assert texts_outside_the_canvas(fig) == []


def test_a_single_logged_point_is_a_marker_on_a_readable_axis(tmp_path):
    log = _write_log(tmp_path / "log.csv", [["train", 1, 1, 540.0, ""], ["eval", 1, 1, 530.0, -530.0]])
    fig = plots.training_curves_figure(log)
    loss_ax, elbo_ax = fig.axes
    for ax, value in ((loss_ax, 540.0), (elbo_ax, -530.0)):
        assert ax.lines[0].get_marker() == "o"
        low, high = ax.get_ylim()
        assert low < value < high
    assert elbo_ax.get_ylim() == pytest.approx((-531.0, -529.0))  # 1 nat either side, not ~60
    assert loss_ax.get_ylim() == pytest.approx((540.0 / 1.05, 540.0 * 1.05))


def test_an_empty_panel_says_why(tmp_path):
    only_eval = _write_log(tmp_path / "eval.csv", [["eval", 5, 1, 200.0, -200.0]])
    loss_ax, elbo_ax = plots.training_curves_figure(only_eval).axes
    assert not loss_ax.lines and "no train loss was logged" in " ".join(t.get_text() for t in loss_ax.texts)
    assert len(elbo_ax.lines) == 1
    only_train = _write_log(tmp_path / "train.csv", [["train", 1, 1, 540.0, ""], ["train", 2, 1, 500.0, ""]])
    loss_ax, elbo_ax = plots.training_curves_figure(only_train, split="test").axes
    assert not elbo_ax.lines and "no test ELBO was logged" in " ".join(t.get_text() for t in elbo_ax.texts)


@pytest.mark.parametrize("figure", ["manifold", "scatter", "reconstructions"])
def test_the_run_figures_keep_their_labels_inside(vae, mnist, figure):
    fig = {"manifold": lambda: plots.manifold_figure(vae, n=10),
           "scatter": lambda: plots.latent_scatter_figure(vae, mnist.x_test[:200], mnist.y_test[:200]),
           "reconstructions": lambda: plots.reconstructions_figure(vae, mnist.x_test[:6])}[figure]()
    assert texts_outside_the_canvas(fig) == []


def test_plot_run_writes_vector_files_or_pngs_at_the_dpi_asked(trained_dir, mnist, tmp_path):
    import shutil
    run = str(tmp_path / "run")
    shutil.copytree(trained_dir, run)
    written = plots.plot_run(run, mnist.x_test[:200], mnist.y_test[:200], fmt="pdf")
    pdfs = sorted(os.path.basename(p) for p in written if p.endswith(".pdf"))
    assert pdfs == ["latent_scatter.pdf", "manifold.pdf", "reconstructions.pdf", "training_curves.pdf"]
    for name in pdfs:
        with open(os.path.join(run, name), "rb") as file:
            assert file.read(5) == b"%PDF-"
    svg = plots.plot_run(run, mnist.x_test[:200], None, fmt="svg")
    with open([p for p in svg if p.endswith("training_curves.svg")][0]) as file:
        assert "<svg" in file.read(2000)
    pngs = plots.plot_run(run, mnist.x_test[:200], None, dpi=200)
    assert png_size([p for p in pngs if p.endswith("training_curves.png")][0]) == (2000, 800)
    for fmt, dpi, flag in (("jpg", 100, "--format"), ("png", 0, "--dpi"), ("png", 72.0, "--dpi")):
        with pytest.raises(ValueError, match=f"^{flag}: expected"):
            plots.plot_run(run, mnist.x_test[:10], None, fmt=fmt, dpi=dpi)
