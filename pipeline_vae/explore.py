"""Looking inside a trained model: what each latent unit carries, how the decoder moves between images and along one
unit, and which test images the model explains best and worst. `pipeline-vae explore --save-dir DIR` writes:

    interpolation.png   decodes between pairs of test images' posterior means: straight line and great circle (slerp)
    traversals.png      one row per latent unit, most informative first: the decoded image as that unit sweeps -3..3
    latent_units.png    the KL each unit carries, sorted, the active units (Burda et al.'s criterion) marked
    best_worst.png      the test images with the lowest and highest ELBO, beside their reconstructions
    explore.json        the numbers behind them: per-unit KL and activity, the images chosen, their ELBOs

    from pipeline_vae.explore import explore_run
    summary = explore_run("runs/cvae", images)      # images as `CVAE.prepare` takes them; returns explore.json's dict

The run's own preprocessing reads the images (`CVAE.prepare`), so any image shape and likelihood works; pictures are
drawn as `plots` draws them (ink for binarized digits, colour as is).

Per-unit KL is KL(q_0(z_d|x) || N(0, 1)) averaged over the images: for the standard normal prior without a flow the
units' values sum to the model's KL (closed form); with a learned prior or a flow it is a diagnostic of how far each
unit's posterior moves from N(0, 1), not a split of the model's KL (which does not factor over units there).
"""
import io
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.inference import CVAE
from pipeline_vae.metrics import ACTIVE_UNIT_THRESHOLD, per_image_elbo
from pipeline_vae.plots import DPI, check_format, is_ink, save_figure, show, with_format
from pipeline_vae.run_config import FILES

#: The values a traversal sets its unit to: the standard normal's central 99.7%.
TRAVERSAL_VALUES = tuple(np.linspace(-3.0, 3.0, 9).round(2).tolist())


def unit_kl(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Per-unit KL(N(mean_d, exp(logvar_d)) || N(0, 1)) in nats, averaged over the rows: [N, L] -> [L] float64."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return np.mean(0.5 * (mean**2 + np.exp(logvar) - 1.0 - logvar), axis=0)


def image_grid(rows: Sequence[Tuple[str, np.ndarray]], ink: bool, column_titles: Optional[Sequence[str]] = None,
               title: str = "") -> Figure:
    """A grid of images: one labelled row per (label, images [n, H, W(, C)]), optional column titles, laid out inside
    the canvas (constrained layout). About 0.9 inch per image."""
    n_rows, n_cols = len(rows), max(len(images) for _, images in rows)
    fig = Figure(figsize=(1.6 + 0.9 * n_cols, 0.5 + 0.95 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                show(ax, images[c], ink)
            else:
                ax.set_axis_off()
            if r == 0 and column_titles is not None and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=7)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _grey(images: np.ndarray) -> np.ndarray:
    return images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images


def interpolation_figure(vae: CVAE, images: np.ndarray, pairs: Sequence[Tuple[int, int]], steps: int = 9) -> Figure:
    """Two rows per pair (i, j) of `images`: the decodes along the straight line and along the great circle between
    their posterior means, from image i (left) to image j (right)."""
    rows = []
    for i, j in pairs:
        rows.append((f"#{i} to #{j}\nlinear", vae.interpolate(images[i], images[j], steps)))
        rows.append(("spherical", vae.interpolate(images[i], images[j], steps, spherical=True)))
    return image_grid(rows, is_ink(vae), [f"t={t:.2f}" for t in np.linspace(0, 1, steps)],
                      "Interpolation between posterior means")


def traversal_figure(vae: CVAE, image: np.ndarray, units: Sequence[int], kl: np.ndarray,
                     values: Sequence[float] = TRAVERSAL_VALUES) -> Figure:
    """One row per unit in `units`: `image`'s posterior mean decoded with that unit set to each of `values`."""
    rows = [(f"z[{u}]\nKL {kl[u]:.2f}", vae.traverse(image, int(u), values)) for u in units]
    return image_grid(rows, is_ink(vae), [f"{v:+.1f}" for v in values],
                      "Traversals: one latent unit swept, the others at the posterior mean (rows by KL)")


def units_figure(kl: np.ndarray, activity: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> Figure:
    """Per-unit KL as bars, largest first, active units (Cov_x E_q[z_d] > `threshold`) in colour, inactive grey."""
    order = np.argsort(-kl, kind="stable")
    active = activity > threshold
    fig = Figure(figsize=(max(6.0, 0.18 * len(kl) + 2), 4), layout="constrained")
    ax = fig.subplots()
    colours = ["tab:blue" if active[u] else "0.7" for u in order]
    ax.bar(np.arange(len(kl)), kl[order], color=colours)
    step = max(1, len(kl) // 25)
    ax.set_xticks(np.arange(0, len(kl), step), [str(u) for u in order[::step]], fontsize=7,
                  rotation=90 if len(kl) > 25 else 0)
    ax.set(xlabel="latent unit (sorted by KL)", ylabel="KL(q(z_d|x) || N(0,1)) (nats, mean over images)",
           xlim=(-0.6, len(kl) - 0.4))
    ax.set_title(f"{int(active.sum())} of {len(kl)} units active (Cov_x E_q[z_d] > {threshold}; blue), "
                 f"total {kl.sum():.2f} nats", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def best_worst_figure(vae: CVAE, images: np.ndarray, elbo: np.ndarray, n: int = 8) -> Figure:
    """The `n` images with the lowest ELBO and the `n` with the highest: the model's input (after the run's
    preprocessing) above its reconstruction, each titled with its index and ELBO."""
    ranked = np.argsort(elbo, kind="stable")
    worst, best = ranked[:n], ranked[::-1][:n]
    rows = []
    for name, chosen in (("worst", worst), ("best", best)):
        rows.append((f"{name}: input", _grey(vae.prepare(images[chosen]))))
        rows.append(("decoded", vae.reconstruct(images[chosen])))
    fig = image_grid(rows, is_ink(vae), title=f"Worst- and best-modelled of {len(elbo)} images (ELBO, nats)")
    axes = np.array(fig.axes).reshape(len(rows), -1)
    for r, chosen in ((0, worst), (2, best)):
        for c, index in enumerate(chosen):
            axes[r][c].set_title(f"#{index}\n{elbo[index]:.1f}", fontsize=7)
    return fig


def _pairs(n_images: int, n_pairs: int, rng: np.random.Generator) -> List[Tuple[int, int]]:
    chosen = rng.permutation(n_images)[:2 * n_pairs]
    return [(int(chosen[2 * p]), int(chosen[2 * p + 1])) for p in range(len(chosen) // 2)]


def explore_run(save_dir: str, images: np.ndarray, seed: int = 0, pairs: int = 3, steps: int = 9, units: int = 10,
                extremes: int = 8, samples: int = 16, fmt: str = "png", dpi: int = DPI, trust_code: bool = False,
                log: Optional[io.TextIOBase] = None) -> Dict[str, Any]:
    """Every exploration picture for a run's save_dir, and `explore.json` with the numbers behind them.

    Args:
        save_dir: A folder written by `pipeline-vae train`.
        images: The images to explore with (e.g. the run's test split), any form `CVAE.prepare` accepts.
        seed: Chooses the interpolation pairs and the traversal's image, and seeds the ELBO's noise.
        pairs: Image pairs to interpolate between.
        steps: Points per interpolation.
        units: Latent units to traverse (the ones with the largest KL).
        extremes: Images shown at each end of the ELBO ranking.
        samples: Draws of z per image for its ELBO (`metrics.per_image_elbo`).
        fmt: The figures' format (png, pdf or svg).
        dpi: A PNG's pixels per inch.
        trust_code: Load the models' own architectures, running any code they hold (see `CVAE.load`).
        log: Where to say what was written; None for silence.

    Returns:
        The summary written to explore.json, with `written`: the paths of the files written.

    Raises:
        ValueError: For a bad format, dpi or count, or fewer than two images (before anything is written).
    """
    check_format(fmt, dpi)
    for name, value in (("pairs", pairs), ("steps", steps), ("units", units), ("extremes", extremes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (2 if name == "steps" else 1):
            raise ValueError(f"{name}: expected an integer >= {2 if name == 'steps' else 1}, got {value!r}")
    vae = CVAE.load(save_dir, trust_code=trust_code)
    x = vae.prepare(images)
    if len(x) < 2:
        raise ValueError(f"images: expected at least 2 images to explore, got {len(x)}")
    rng = np.random.default_rng(seed)
    mean, logvar = vae.encode(x)
    kl, activity = unit_kl(mean, logvar), np.var(mean.astype(np.float64), axis=0)
    order = np.argsort(-kl, kind="stable")
    elbo = per_image_elbo(vae, x, samples=samples, seed=seed)
    chosen_pairs, base = _pairs(len(x), pairs, rng), int(rng.integers(len(x)))
    ranked = np.argsort(elbo, kind="stable")
    n_ext = min(extremes, len(x) // 2)

    def out(role: str) -> str:
        return os.path.join(save_dir, with_format(FILES[role], fmt))

    written = [save_figure(interpolation_figure(vae, x, chosen_pairs, steps), out("interpolation"), dpi),
               save_figure(traversal_figure(vae, x[base], order[:units], kl), out("traversals"), dpi),
               save_figure(units_figure(kl, activity), out("latent_units"), dpi),
               save_figure(best_worst_figure(vae, x, elbo, n_ext), out("best_worst"), dpi)]
    summary: Dict[str, Any] = {
        "n_images": int(len(x)), "seed": int(seed), "latent_dim": int(vae.latent_dim),
        "kl_per_unit": [round(float(v), 6) for v in kl], "activity_per_unit": [round(float(v), 6) for v in activity],
        "units_by_kl": [int(u) for u in order], "active_units": int(np.sum(activity > ACTIVE_UNIT_THRESHOLD)),
        "active_threshold": ACTIVE_UNIT_THRESHOLD,
        "kl_is_the_models": vae.flow is None and type(vae.prior).__name__ == "StandardNormalPrior",
        "interpolation_pairs": [list(p) for p in chosen_pairs], "traversal_image": base,
        "traversal_units": [int(u) for u in order[:units]], "traversal_values": list(TRAVERSAL_VALUES),
        "elbo_samples": int(samples), "elbo_mean": float(elbo.mean()),
        "worst": [{"index": int(i), "elbo": float(elbo[i])} for i in ranked[:n_ext]],
        "best": [{"index": int(i), "elbo": float(elbo[i])} for i in ranked[::-1][:n_ext]],
    }
    path = os.path.join(save_dir, FILES["explore"])
    write_json_atomic(path, summary)
    written.append(path)
    if log:
        log.write(f"{summary['active_units']} of {vae.latent_dim} units active; per-image ELBO from "
                  f"{elbo.min():.1f} to {elbo.max():.1f} nats over {len(x)} images\n")
    return {**summary, "written": written}
