"""The pictures people expect from a VAE run, as PNG (or PDF or SVG) and one GIF, written atomically into the run's
save_dir.

Figures use matplotlib's object API (`matplotlib.figure.Figure`), so no pyplot state or GUI backend is touched.

    samples/epoch_000.png ... and samples.gif   16 images from fixed latent vectors, per epoch (`SampleGrid` trace)
    manifold.png             the 2-D latent manifold (latent size 2 only)
    latent_scatter.png       test-set posterior means coloured by label (first two principal components if L > 2;
                             only for data with labels)
    reconstructions.png      original / model input / decoded mean (/ binarized decoding, Bernoulli only)

Grey images are drawn dark-on-white (ink, the "gray_r" map) for the Bernoulli likelihood (binarized digits) and
light-on-dark ("gray") otherwise; colour images as they are.
    training_curves.png      train loss and the selection split's ELBO from the run's `train_log.csv`

`plot_run(..., fmt="pdf" | "svg", dpi=300)` writes the figures as vector files (or PNG at another resolution) for
papers; the GIF stays a GIF.
"""
import glob
import io
import os
from statistics import NormalDist
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from pipeline_vae.atomic import atomic_path
from pipeline_vae.train_log import read_log
from pipeline_vae.run_config import FIGURE_DPI, FIGURE_FORMATS, FILES

if TYPE_CHECKING:  # the models' plots import it when they run: tables and sample grids need no TensorFlow
    from pipeline_vae.inference import CVAE

SAMPLES_DIR, GIF_FILE, LOG_FILE = FILES["samples"], FILES["gif"], FILES["log"]
#: The figure formats `plot` writes (`--format`): raster PNG, or vector PDF and SVG for papers; PNG pixels per inch.
FORMATS, DPI = FIGURE_FORMATS, FIGURE_DPI


def check_format(fmt: str, dpi: int = DPI) -> None:
    """Refuse a figure format outside `FORMATS` or a resolution that is not a positive integer.

    Raises:
        ValueError: Naming `--format` or `--dpi` and what was expected.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 2400:
        raise ValueError(f"--dpi: expected an integer from 10 to 2400, got {dpi!r}")


def with_format(name: str, fmt: str) -> str:
    """`name` with its extension replaced by `fmt`'s ("manifold.png", "pdf" -> "manifold.pdf")."""
    return f"{os.path.splitext(name)[0]}.{fmt}"


def save_figure(fig: Figure, path: str, dpi: int = DPI) -> str:
    """Write `fig` to `path` in the format its extension names (png, pdf or svg; `dpi` sets a PNG's pixels per inch)
    through a temporary file and a rename. Returns `path`.

    Raises:
        ValueError: If the extension is not one of `FORMATS`, or `dpi` is not a positive integer.
    """
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    check_format(fmt, dpi)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """Arrange [N, H, W] or [N, H, W, C] images (N <= rows * cols) on a grid padded with 0,
    [rows*(H+pad)+pad, cols*(W+pad)+pad(, C)]."""
    n, h, w = images.shape[:3]
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad) + images.shape[3:], np.float32)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return grid


def show(ax, image: np.ndarray, ink: bool = True) -> None:
    """Draw one image in 0..1 on `ax`: grey [H, W] with the "gray_r" (ink) or "gray" map, colour [H, W, 3] as is."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        ax.imshow(np.clip(image, 0.0, 1.0))
    else:
        ax.imshow(image, cmap="gray_r" if ink else "gray", vmin=0, vmax=1)


def is_ink(vae: "CVAE") -> bool:
    """Whether a model's grey images are drawn as ink (dark on white): the Bernoulli likelihood's binarized digits."""
    return vae.likelihood.name == "bernoulli"


def plot_sample_grid(images: np.ndarray, path: str, title: str, ink: bool = True) -> str:
    """A square grid of generated images (the likelihood's mean images), 400 x 430 px. Returns `path`."""
    side = int(np.ceil(np.sqrt(len(images))))
    fig = Figure(figsize=(4, 4.3))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.88))
    show(ax, tile(images, side, side), ink)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def write_gif(frames: Sequence[str], path: str, seconds_per_frame: float = 0.5) -> str:
    """An animated GIF (looping) of the PNG `frames`, in order. Returns `path`.

    Raises:
        ValueError: If `frames` is empty.
    """
    if not frames:
        raise ValueError("write_gif: no frames given")
    images = [Image.open(frame).convert("P", palette=Image.ADAPTIVE) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=int(seconds_per_frame * 1000))
    return path


def sample_frames(save_dir: str) -> List[str]:
    """The per-epoch sample grids of a run, in epoch order."""
    return sorted(glob.glob(os.path.join(save_dir, SAMPLES_DIR, "epoch_*.png")))


def manifold_figure(vae: "CVAE", n: int = 20) -> Figure:
    """Decode an n x n grid of z over the standard-normal quantiles 0.05..0.95, axes labelled with z (the first and
    last row and column always labelled). 800 x 800 px.

    Raises:
        ValueError: If the model's latent size is not 2, or n < 2.
    """
    if vae.latent_dim != 2:
        raise ValueError(f"the latent manifold needs latent size 2, this model has {vae.latent_dim}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)], np.float32)
    z = np.array([[z1, z2] for z2 in values[::-1] for z1 in values], np.float32)  # rows top to bottom: z2 falling
    canvas = tile(vae.decode(z), n, n, pad=0)
    fig = Figure(figsize=(8, 8))
    ax = fig.add_axes((0.1, 0.1, 0.86, 0.84))
    show(ax, canvas, is_ink(vae))
    h, w = vae.image_shape[:2]
    centres_x, centres_y = np.arange(n) * w + (w - 1) / 2, np.arange(n) * h + (h - 1) / 2
    ticks = sorted(set(range(0, n, max(1, n // 10))) | {n - 1})
    ax.set_xticks(centres_x[ticks], [f"{values[i]:.2f}" for i in ticks], rotation=90)
    ax.set_yticks(centres_y[ticks], [f"{values[::-1][i]:.2f}" for i in ticks])
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("Latent manifold: decoded grid over N(0,1) quantiles 0.05-0.95")
    return fig


def plot_manifold(vae: "CVAE", path: str, n: int = 20, dpi: int = DPI) -> str:
    """Write `manifold_figure(vae, n)` to `path` (png, pdf or svg by its extension). Returns `path`."""
    return save_figure(manifold_figure(vae, n), path, dpi)


def principal_components(points: np.ndarray, k: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """Project [N, D] points on their first `k` principal components; returns (projection [N, k], explained share)."""
    centred = points - points.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    share = singular**2 / np.sum(singular**2)
    return centred @ vt[:k].T, share[:k]


def latent_scatter_figure(vae: "CVAE", images: np.ndarray, labels: np.ndarray) -> Figure:
    """Posterior means of `images` coloured by label; for latent size > 2 the first two principal components, said so
    in the title. 800 x 700 px.

    Raises:
        ValueError: If labels do not match the images.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(images), ):
        raise ValueError(f"labels: expected shape ({len(images)},), got {labels.shape}")
    mean, _ = vae.encode(images)
    if vae.latent_dim == 2:
        points, xlabel, ylabel, title = mean, "z[0]", "z[1]", "Test set in latent space (posterior means)"
    elif vae.latent_dim == 1:
        points = np.concatenate([mean, np.zeros_like(mean)], axis=1)
        xlabel, ylabel, title = "z[0]", "", "Test set in latent space (posterior means, 1-D)"
    else:
        points, share = principal_components(mean)
        xlabel, ylabel = f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%} of variance)"
        title = f"Test set posterior means: first two principal components of {vae.latent_dim}-D z"
    fig = Figure(figsize=(8, 7))
    ax = fig.add_axes((0.1, 0.09, 0.75, 0.83))
    classes = max(10, int(labels.max()) + 1) if labels.size else 10
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10" if classes <= 10 else "viridis", s=3,
                         vmin=-0.5, vmax=classes - 0.5)
    fig.colorbar(scatter, cax=fig.add_axes((0.88, 0.09, 0.03, 0.83)), ticks=range(0, classes, max(1, classes // 10)),
                 label="label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return fig


def plot_latent_scatter(vae: "CVAE", images: np.ndarray, labels: np.ndarray, path: str, dpi: int = DPI) -> str:
    """Write `latent_scatter_figure(vae, images, labels)` to `path` (png, pdf or svg by its extension). Returns
    `path`."""
    return save_figure(latent_scatter_figure(vae, images, labels), path, dpi)


def reconstructions_figure(vae: "CVAE", images: np.ndarray) -> Figure:
    """Rows: original, the model's input (binarized if the run binarized), the decoded mean of z = posterior mean, and
    for the Bernoulli likelihood its binarized decoding; one column per image. (100 + 75 * N) x 400 px."""
    from pipeline_vae.inference import to_unit_images
    original = to_unit_images(images, vae.image_shape)
    model_input = vae.prepare(images)
    decoded = vae.reconstruct(images)
    if vae.image_shape[2] == 1:
        original, model_input = original[..., 0], model_input[..., 0]
    rows = [("original", original), ("binarized" if vae.binarize else "input", model_input),
            ("decoded mean", decoded)]
    if is_ink(vae):
        rows.append(("decoded > 0.5", (decoded > 0.5).astype(np.float32)))
    n = len(original)
    fig = Figure(figsize=(1 + 0.75 * n, len(rows)))
    height = 0.92 / len(rows)
    for r, (name, row) in enumerate(rows):
        for c in range(n):
            ax = fig.add_axes((1 / (1 + 0.75 * n) + c * 0.75 / (1 + 0.75 * n), 1 - (r + 1) * height - 0.02,
                               0.72 / (1 + 0.75 * n), height * 0.95))
            show(ax, row[c], is_ink(vae))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    return fig


def plot_reconstructions(vae: "CVAE", images: np.ndarray, path: str, dpi: int = DPI) -> str:
    """Write `reconstructions_figure(vae, images)` to `path` (png, pdf or svg by its extension). Returns `path`."""
    return save_figure(reconstructions_figure(vae, images), path, dpi)


def _single_point_window(ax, values: Sequence[float], log_scale: bool = False) -> None:
    """Give a panel whose values are all equal (one logged point) a y range a reader can read the value off: 1 nat
    either side (a factor of 1.05 on a log axis), not matplotlib's default of a few per cent of the value."""
    if len(set(values)) != 1:
        return
    value = values[0]
    if log_scale and value > 0:
        ax.set_ylim(value / 1.05, value * 1.05)
    else:
        ax.set_ylim(value - 1, value + 1)


def _empty_panel(ax, reason: str) -> None:
    """Say in the middle of an empty panel why it is empty."""
    ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", fontsize=9, wrap=True,
            color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def training_curves_figure(log_path: str, split: str = "test") -> Figure:
    """Train loss (per logged step, up to the last step of every epoch) and the `split` ELBO (per epoch) against the
    training step, every logged point drawn (markers when there are few). A panel with nothing logged says why.
    1000 x 400 px at the default dpi; labels are laid out inside the canvas (constrained layout).

    Raises:
        FileNotFoundError: If the log does not exist.
        ValueError: If it holds neither train loss nor ELBO values.
    """
    log = read_log(log_path)
    if not log["loss"] and not log["elbo"]:
        raise ValueError(f"{log_path}: no train loss or {split} ELBO rows to plot")
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    if log["loss"]:
        steps, _, values = zip(*log["loss"])
        left.plot(steps, values, lw=1, marker="o" if len(values) < 30 else None, ms=3)
        left.set_yscale("log")  # the untrained first steps are ~3x the rest
        _single_point_window(left, values, log_scale=True)
        left.set(xlabel="training step", ylabel="train loss (nats, batch mean, log scale)")
    else:
        _empty_panel(left, "no train loss was logged\n(`--log-steps 0` turns step logging off)")
    left.set_title("Training loss")
    if log["elbo"]:
        steps, epochs, values = zip(*log["elbo"])
        right.plot(steps, values, marker="o", ms=4)
        _single_point_window(right, values)
        label_every = max(1, len(epochs) // 15)  # at most ~15 epoch labels, the last always
        for i, (step, epoch, value) in enumerate(zip(steps, epochs, values)):
            if i % label_every == 0 or i == len(epochs) - 1:
                right.annotate(f"{epoch}", (step, value), textcoords="offset points", xytext=(0, 6), fontsize=7,
                               ha="center", annotation_clip=True)
        right.set(xlabel="training step (labels: epoch)", ylabel=f"{split} ELBO (nats)")
    else:
        _empty_panel(right, f"no {split} ELBO was logged\n(the run had no {split} data, or stopped before the end "
                            "of its first epoch)")
    right.set_title(f"{split.capitalize()} ELBO")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def plot_training_curves(log_path: str, path: str, split: str = "test", dpi: int = DPI) -> str:
    """Write `training_curves_figure(log_path, split)` to `path` (png, pdf or svg by its extension). Returns `path`."""
    return save_figure(training_curves_figure(log_path, split), path, dpi)


def plot_run(save_dir: str, images: np.ndarray, labels: Optional[np.ndarray] = None, n_reconstructions: int = 12,
             log: Optional[io.TextIOBase] = None, trust_code: bool = False, fmt: str = "png",
             dpi: int = DPI) -> List[str]:
    """Every picture for a run's save_dir: manifold (latent 2), latent scatter (with labels), reconstructions,
    training curves (if the log exists), and the samples GIF (if per-epoch grids exist).

    Args:
        save_dir: A folder written by `pipeline-vae train`.
        images: Test images (uint8) for the scatter and reconstructions.
        labels: Their labels, or None (the scatter is skipped).
        n_reconstructions: Columns of the reconstruction figure.
        log: Where to say what was skipped; None for silence.
        trust_code: Load the models' own architectures, running any code they hold (see `CVAE.load`).
        fmt: The figures' format, one of `FORMATS` (the GIF stays a GIF).
        dpi: A PNG's pixels per inch (the default gives the sizes the figure functions state).

    Returns:
        The paths written.

    Raises:
        ValueError: For a format outside `FORMATS` or a dpi that is not a positive integer (before anything is read).
    """
    from pipeline_vae.inference import CVAE
    check_format(fmt, dpi)
    vae = CVAE.load(save_dir, trust_code=trust_code)

    def out(role: str) -> str:
        return os.path.join(save_dir, with_format(FILES[role], fmt))

    written = []
    if vae.latent_dim == 2:
        written.append(plot_manifold(vae, out("manifold"), dpi=dpi))
    elif log:
        log.write(f"{with_format(FILES['manifold'], fmt)} skipped: latent size is {vae.latent_dim}, not 2\n")
    if labels is not None:
        written.append(plot_latent_scatter(vae, images, labels, out("latent_scatter"), dpi))
    elif log:
        log.write(f"{with_format(FILES['latent_scatter'], fmt)} skipped: the data has no labels to colour it by\n")
    written.append(plot_reconstructions(vae, images[:n_reconstructions], out("reconstructions"), dpi))
    log_path = vae.config.path(save_dir, "log") if vae.config else os.path.join(save_dir, LOG_FILE)
    if os.path.isfile(log_path):
        split = vae.config.selection if vae.config else "test"
        written.append(plot_training_curves(log_path, out("training_curves"), split, dpi))
    elif log:
        log.write(f"{with_format(FILES['training_curves'], fmt)} skipped: no {os.path.basename(log_path)} in {save_dir}\n")
    frames = sample_frames(save_dir)
    if frames:
        written.append(write_gif(frames, os.path.join(save_dir, GIF_FILE)))
    elif log:
        log.write(f"{GIF_FILE} skipped: no {SAMPLES_DIR}/epoch_*.png grids in {save_dir}\n")
    return written
