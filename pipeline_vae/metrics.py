"""Test-set metrics of a trained CVAE: ELBO (analytic and Monte Carlo KL), its terms, the importance-weighted bound,
and active latent units.

    vae = CVAE.load("runs/default")
    m = evaluate(vae, load_data(vae.config.data).test_images(), iw_samples=1000)   # dict of numbers, nats per image

All values are averages over the images given. The importance-weighted bound (Burda, Grosse & Salakhutdinov 2016,
Eq. 8) is log p(x) >= E[log 1/K sum_k p(x, z_k) / q(z_k | x)], z_k ~ q(z|x); K = 1 is the ELBO, and it tightens as K
grows. Every image's K samples are decoded in one vectorised call (images are grouped so that one call decodes at most
`max_decodes` latent vectors); the log-weights and their log-mean-exp are `ops.densities`' (as in `IWAELoss`).
"""
import hashlib
import math
import os
import sys
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from ops import SplitOp, StandardNormalPrior
from ops.densities import (bits_per_dim_of, kl_to_prior, log_importance_weights, log_mean_exp, monte_carlo_kl,
                           reparameterize)
from ops.names import DEFAULT_LIKELIHOOD
from pipeline_vae.atomic import atomic_path
from pipeline_vae.inference import CVAE

#: Burda et al.'s threshold on Cov_x(E_q[z_d]) for counting latent unit d as active.
ACTIVE_UNIT_THRESHOLD = 0.01


def active_units(means: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Burda et al.'s active units: dimensions whose posterior mean varies across the data by more than `threshold`.

    Args:
        means: Posterior means over a data set, [N, latent_dim].
        threshold: Minimum variance Cov_x(E_q[z_d]).

    Returns:
        The number of active dimensions.
    """
    return int(np.sum(np.var(np.asarray(means, np.float64), axis=0) > threshold))


class _Evaluator:
    """Compiled per-batch computations for one CVAE: the run's graph in eval mode, the encoder's output split by the
    `split` slot's `SplitOp` (log-variance clipped as in training) and z drawn as the `reparameterize` slot's
    `ReparameterizeOp` draws it (`ops.densities.reparameterize`), at noise from the evaluation's own seeded
    generator."""
    def __init__(self, vae: CVAE) -> None:
        self.vae = vae
        self.split = SplitOp(inputs="meanlogvar", outputs=("mean", "logvar"))

    @tf.function(reduce_retracing=True)
    def elbo_terms(self, x: tf.Tensor, eps: tf.Tensor):
        """Per-example log p(x|z) (one sample), MC KL at that sample, the KL with as much in closed form as the prior
        and posterior allow (`kl_to_prior`: exact for N(0, I) and no flow), posterior mean; x [B, H, W, C]."""
        mean, logvar = self.split.forward(self.vae.encoder(x, training=False), {"mode": "eval"})
        eps, extra = eps[:, :self.vae.latent_dim], eps[:, self.vae.latent_dim:]
        z, log_qz = self.posterior(mean, logvar, reparameterize(mean, logvar, eps))
        recon = self.vae.likelihood.log_prob(x, self.vae.decoder(z, training=False))
        log_pz = self.log_prior(z, extra)
        kl_mc = monte_carlo_kl(z, mean, logvar, log_pz, log_qz)
        return recon, kl_mc, kl_to_prior(mean, logvar, z, log_pz, log_qz), mean

    def log_prior(self, z: tf.Tensor, extra: tf.Tensor):
        """log p(z) under the run's learned prior (with its own noise `extra`, [N, noise_dim - L], when it needs some:
        a hierarchical prior's z2), or None for the standard normal (whose KL has a closed form)."""
        if type(self.vae.prior) is StandardNormalPrior:
            return None
        if self.vae.noise_dim > self.vae.latent_dim:
            return self.vae.prior.log_prob(z, extra)
        return self.vae.prior.log_prob(z)

    def posterior(self, mean: tf.Tensor, logvar: tf.Tensor, z: tf.Tensor):
        """(z, log q(z|x)) after the run's posterior flow (the `flow` slot's op, on z [N, L] sample-major), or (z, None)
        without one (the Gaussian's density, computed where it is used)."""
        if self.vae.flow is None:
            return z, None
        return tuple(self.vae.flow.forward([mean, logvar, z], {"mode": "eval"}))

    @tf.function(reduce_retracing=True)
    def log_weights(self, x: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        """log p(x, z_k) - log q(z_k|x) for eps [K, B, noise_dim] and x [B, H, W, C]: returns [K, B]."""
        k, b = tf.shape(eps)[0], tf.shape(eps)[1]
        mean, logvar = self.split.forward(self.vae.encoder(x, training=False), {"mode": "eval"})
        means, logvars = tf.tile(mean, [k, 1]), tf.tile(logvar, [k, 1])  # sample-major: row j * B + i is image i
        eps = tf.reshape(eps, [k * b, -1])
        eps, extra = eps[:, :self.vae.latent_dim], eps[:, self.vae.latent_dim:]
        z = reparameterize(means, logvars, eps)  # [K*B, L]
        z, log_qz = self.posterior(mean, logvar, z)
        params = self.vae.decoder(z, training=False)  # one call for all K*B samples
        targets = tf.reshape(tf.broadcast_to(x[None], tf.concat([[k], tf.shape(x)], 0)),
                             tf.concat([[k * b], tf.shape(x)[1:]], 0))
        log_px = self.vae.likelihood.log_prob(targets, params)
        log_w = log_importance_weights(log_px, z, means, logvars, self.log_prior(z, extra), log_qz)
        return tf.reshape(log_w, [k, b])


def progress_bar(total: int, label: str, disable: bool = False) -> tqdm:
    """A tqdm bar over `total` images on stderr: redrawn in place on a terminal, and in logs (not a terminal) at most
    once a minute, so a 20-minute evaluation leaves a short log."""
    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=label, unit="img", file=sys.stderr, disable=disable,
                mininterval=0.5 if tty else 60.0, dynamic_ncols=tty)


def iw_bound(vae: CVAE, images: np.ndarray, k: int, seed: Optional[int] = 0, max_decodes: int = 5000,
             progress: Optional[tqdm] = None, resume_file: Optional[str] = None,
             save_every: float = 60.0, say: Optional[Callable[[str], None]] = None) -> np.ndarray:
    """The K-sample importance-weighted estimate of log p(x) for each image.

    Args:
        vae: The trained model.
        images: Images in any form `CVAE.prepare` accepts.
        k: Samples per image (K >= 1).
        seed: Seed of the noise (same seed, same numbers).
        max_decodes: Latent vectors decoded per model call (memory/speed trade-off).
        progress: Updated with the number of images done.
        resume_file: Where to keep the work done so far (an .npz, written atomically every `save_every` seconds and
            removed once the bound is complete). If it holds an interrupted evaluation of the same model weights,
            images, `k`, `seed` and `max_decodes`, that evaluation continues where it stopped and gives the same
            numbers as an uninterrupted one; a file of any other evaluation is replaced.
        save_every: Seconds between two saves of `resume_file`.
        say: Given one line with the estimated time left, measured on the second model call (the first includes
            tracing); nothing when one call covers every image. None says nothing.

    Returns:
        log (1/K sum_k w_k) per image, float64 [N].

    Raises:
        ValueError: If `k` or `max_decodes` is not a positive integer, `save_every` is negative, or the images are
            invalid.
    """
    for name, value in (("k", k), ("max_decodes", max_decodes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(save_every, bool) or not isinstance(save_every, (int, float)) or not save_every >= 0:
        raise ValueError(f"save_every must be a non-negative number of seconds, got {save_every!r}")
    x = vae.prepare(images)
    evaluator = _Evaluator(vae)
    rng = tf.random.Generator.from_seed(0 if seed is None else seed)
    group = max(1, max_decodes // k)  # images per call; if K alone exceeds max_decodes, samples are chunked
    chunk = max(1, max_decodes // group)
    out = np.full(len(x), np.nan)  # (NaN, not garbage, wherever a resume failed to put a value back)
    first = 0
    if resume_file is not None:
        key = _evaluation_key(vae, x, k, 0 if seed is None else seed, max_decodes)
        first = _load_partial(resume_file, key, out, rng)
        if progress is not None and first:
            progress.update(first)
        last_save = time.monotonic()
    calls = 0
    for start in range(first, len(x), group):
        if calls == 1:
            call_start = time.perf_counter()
        xb = tf.constant(x[start:start + group])
        parts = [
            evaluator.log_weights(xb, rng.normal([min(chunk, k - j), xb.shape[0], vae.noise_dim])).numpy()
            for j in range(0, k, chunk)
        ]
        out[start:start + len(xb)] = log_mean_exp(np.concatenate(parts, axis=0).astype(np.float64), axis=0).numpy()
        if progress is not None:
            progress.update(len(xb))
        done = start + len(xb)
        calls += 1
        if say is not None and calls == 2:
            left = (time.perf_counter() - call_start) / len(xb) * (len(x) - done)
            say(f"IW bound K={k} on {len(x)} images: about {_duration(left)} left at this machine's speed (measured "
                f"on {len(xb)} images; --iw-samples sets K, --n-images the count)")
        if resume_file is not None and done < len(x) and time.monotonic() - last_save >= save_every:
            _save_partial(resume_file, key, out, done, rng)
            last_save = time.monotonic()
    if resume_file is not None and os.path.exists(resume_file):
        os.remove(resume_file)
    return out


def _duration(seconds: float) -> str:
    """"40 s", "12 min", "1.5 h"."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _evaluation_key(vae: CVAE, x: np.ndarray, k: int, seed: int, max_decodes: int) -> str:
    """A digest of everything an IW bound's numbers depend on: the weights (a learned prior's and a flow's too), the
    images, K, the seed and the call size (which sets the order the noise is drawn in)."""
    digest = hashlib.sha256(f"{vae.likelihood.name} k={k} seed={seed} max_decodes={max_decodes} "
                            f"shape={x.shape} dtype={x.dtype}".encode())
    digest.update(np.ascontiguousarray(x).tobytes())
    learned = [op.get_fe_models() for op in (vae.prior, vae.flow) if hasattr(op, "get_fe_models")]
    models = [vae.encoder, vae.decoder] + [m for group in learned for m in sorted(group, key=lambda m: m.name)]
    for weight in [w for model in dict.fromkeys(models) for w in model.weights]:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def _load_partial(path: str, key: str, out: np.ndarray, rng: tf.random.Generator) -> int:
    """Put an interrupted evaluation's values into `out` and its noise generator's state into `rng`; return how many
    images it had done (0 when `path` is missing, unreadable or of another evaluation)."""
    if not os.path.exists(path):
        return 0
    try:
        with np.load(path, allow_pickle=False) as saved:
            same = str(saved["key"]) == key
            done, values, state = int(saved["done"]), saved["values"], saved["rng_state"]
    except (OSError, ValueError, KeyError) as error:
        print(f"Ignoring {path}: not a partial IW evaluation ({error}); starting from the first image",
              file=sys.stderr)
        return 0
    if not same or not 0 < done <= len(out) or values.shape != (done, ) or state.shape != rng.state.shape:
        print(f"Ignoring {path}: it holds another evaluation (other weights, images, K or seed); starting from the "
              "first image", file=sys.stderr)
        return 0
    out[:done] = values
    rng.reset(state)
    print(f"Resuming the IW bound at image {done + 1} of {len(out)} from {path}", file=sys.stderr)
    return done


def _save_partial(path: str, key: str, out: np.ndarray, done: int, rng: tf.random.Generator) -> None:
    """Write the first `done` values and the generator's state to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, key=np.array(key), done=np.array(done), values=out[:done], rng_state=rng.state.numpy())


def per_image_elbo(vae: CVAE, images: np.ndarray, samples: int = 16, seed: int = 0, max_decodes: int = 5000,
                   noise: Optional[np.ndarray] = None) -> np.ndarray:
    """Each image's ELBO, estimated with `samples` draws of z ~ q(z|x): the mean over the draws of the log weights
    log p(x, z) - log q(z|x) that the IW bound uses (the run's prior and flow included). The noise is
    `numpy.random.default_rng(seed).standard_normal((samples, N, vae.noise_dim))`, so the numbers can be recomputed,
    or `noise` itself when given ([S, N, noise_dim]; it sets `samples`).

    Returns:
        float64 [N], nats per image (higher: the model explains the image better).

    Raises:
        ValueError: If `images` are not valid, `samples` is not a positive integer, or `noise` has the wrong shape.
    """
    x = vae.prepare(images)
    if noise is not None:
        eps = np.asarray(noise, np.float32)
        if eps.ndim != 3 or eps.shape[1:] != (len(x), vae.noise_dim) or eps.shape[0] < 1:
            raise ValueError(f"noise: expected shape [S, {len(x)}, {vae.noise_dim}], got {eps.shape}")
        samples = eps.shape[0]
    elif isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    else:
        eps = np.random.default_rng(seed).standard_normal((int(samples), len(x), vae.noise_dim)).astype(np.float32)
    evaluator, per_call = _Evaluator(vae), max(1, max_decodes // int(samples))
    out = [evaluator.log_weights(tf.constant(x[i:i + per_call]), tf.constant(eps[:, i:i + per_call])).numpy()
           for i in range(0, len(x), per_call)]
    return np.concatenate(out, axis=1).astype(np.float64).mean(axis=0)


def evaluate(vae: CVAE, images: np.ndarray, iw_samples: int = 1000, seed: Optional[int] = 0, batch_size: int = 500,
             max_decodes: int = 5000, show_progress: bool = True,
             resume_file: Optional[str] = None, say: Optional[Callable[[str], None]] = None) -> Dict[str, float]:
    """All test-set numbers for one model.

    Args:
        vae: The trained model.
        images: The evaluation images (e.g. the 10k MNIST test set), any form `CVAE.prepare` accepts.
        iw_samples: K of the importance-weighted bound; 0 skips it.
        seed: Seed of all sampling noise.
        batch_size: Images per call for the ELBO terms.
        max_decodes: Latent vectors per call for the IW bound.
        show_progress: Show a tqdm progress bar with ETA for the IW bound (on stderr).
        resume_file: Keeps the IW bound's progress so an interrupted evaluation continues (`iw_bound`'s argument).
        say: Where the IW bound's time estimate goes (`iw_bound`'s argument).

    Returns:
        A dict, in nats per image: `elbo_mc` (one-sample MC KL, what training logs), `elbo_analytic` (closed-form
        KL), `reconstruction` (E_q log p(x|z), one sample), `kl` (closed form), `iw_bound` and `iw_samples`, their
        standard errors `elbo_mc_se` / `iw_bound_se`, `active_units`, `latent_dim`, `n_images`, `seconds`; and the
        `likelihood`, with `elbo_bpd` / `iw_bound_bpd` (bits per dimension; None for a Bernoulli on grey levels,
        which is a cross-entropy, not a likelihood of the data).

    Raises:
        ValueError: If the arguments or images are invalid.
    """
    if isinstance(iw_samples, bool) or not isinstance(iw_samples, (int, np.integer)) or iw_samples < 0:
        raise ValueError(f"iw_samples must be a non-negative integer, got {iw_samples!r}")
    start_time = time.perf_counter()
    x = vae.prepare(images)
    evaluator = _Evaluator(vae)
    rng = tf.random.Generator.from_seed(0 if seed is None else seed)
    recon, kl_mc, kl_an, means = [], [], [], []
    for start in range(0, len(x), batch_size):
        xb = tf.constant(x[start:start + batch_size])
        terms = evaluator.elbo_terms(xb, rng.normal([xb.shape[0], vae.noise_dim]))
        for store, value in zip((recon, kl_mc, kl_an, means), terms):
            store.append(value.numpy().astype(np.float64))
    recon, kl_mc, kl_an = (np.concatenate(v) for v in (recon, kl_mc, kl_an))
    elbo_mc = recon - kl_mc
    n = len(x)
    result = {
        "elbo_mc": float(elbo_mc.mean()),
        "elbo_mc_se": float(elbo_mc.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        "elbo_analytic": float((recon - kl_an).mean()),
        "reconstruction": float(recon.mean()),
        "kl": float(kl_an.mean()),
        "active_units": active_units(np.concatenate(means)),
        "latent_dim": int(vae.latent_dim),
        "n_images": int(n),
        "iw_samples": int(iw_samples),
        "likelihood": vae.likelihood.name,
    }
    dims = int(np.prod(vae.image_shape))
    binary = bool(np.all((x == 0.0) | (x == 1.0)))
    result["elbo_bpd"] = bits_per_dim_of(vae.likelihood.name, result["elbo_analytic"], dims, binary)
    if iw_samples:
        with progress_bar(n, f"IW bound K={iw_samples}", disable=not show_progress) as progress:
            log_p = iw_bound(vae, x, iw_samples, seed=seed, max_decodes=max_decodes, progress=progress,
                             resume_file=resume_file, say=say)
        result["iw_bound"] = float(log_p.mean())
        result["iw_bound_se"] = float(log_p.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        result["iw_bound_bpd"] = bits_per_dim_of(vae.likelihood.name, result["iw_bound"], dims, binary)
    result["seconds"] = round(time.perf_counter() - start_time, 1)
    return result


def format_table(metrics: Dict[str, float]) -> str:
    """The metrics as an aligned two-column text table."""
    rows = [("test images", f"{metrics['n_images']}"), ("latent size", f"{metrics['latent_dim']}"),
            ("ELBO, analytic KL (nats)", f"{metrics['elbo_analytic']:.2f}"),
            ("ELBO, 1-sample MC KL (nats)", f"{metrics['elbo_mc']:.2f} ± {metrics['elbo_mc_se']:.2f}"),
            ("  reconstruction E[log p(x|z)]", f"{metrics['reconstruction']:.2f}"),
            ("  KL(q(z|x) || p(z))", f"{metrics['kl']:.2f}")]
    if metrics.get("iw_samples"):
        rows.append((f"IW bound, K={metrics['iw_samples']} (nats)",
                     f"{metrics['iw_bound']:.2f} ± {metrics['iw_bound_se']:.2f}"))
    if metrics.get("elbo_bpd") is not None:
        rows.append(("ELBO, analytic KL (bits/dim)", f"{metrics['elbo_bpd']:.3f}"))
    if metrics.get("iw_bound_bpd") is not None:
        rows.append((f"IW bound, K={metrics['iw_samples']} (bits/dim)", f"{metrics['iw_bound_bpd']:.3f}"))
    rows += [("likelihood", metrics.get("likelihood", DEFAULT_LIKELIHOOD)),
             (f"active units (Cov > {ACTIVE_UNIT_THRESHOLD})", f"{metrics['active_units']} / {metrics['latent_dim']}"),
             ("seconds", f"{metrics['seconds']}")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
