"""Print the no-latent reference likelihoods of a data set, and read discretized logistic runs on its grey levels.

    python tools/likelihood_references.py --data mnist
    python tools/likelihood_references.py --data runs/data/digits \
        --runs runs/ablations/likelihoods_digits/runs/discretized_logistic/seed_0

For the data (its training images fit, its test images scored): independent per-pixel histograms over the 256 values
and independent per-pixel Bernoullis of the images binarized at 0.5, in nats per image and bits/dim
(`pipeline_vae.baselines`). For each run (a saved discretized logistic model): log p(x | z = posterior mean) of the
test images under the 256-value discretization the model was trained with, and under the grey levels the data uses
(docs/ablations/README.md, likelihoods_digits). Exits 2 with one line on bad input.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="mnist", help="mnist, a .npz or a folder of images (default: mnist)")
    parser.add_argument("--runs", nargs="*", default=[], help="run folders of discretized logistic models to read")
    args = parser.parse_args(argv)
    try:
        report(args.data, args.runs)
    except (ValueError, OSError) as err:
        print(f"likelihood_references: {err}", file=sys.stderr)
        return 2
    return 0


def report(data: str, runs) -> None:
    import tensorflow as tf

    from ops.densities import (LOGISTIC_LOG_SCALE_MIN, bits_per_dim, discretized_logistic_log_likelihood,
                               location_and_log_scale)
    from pipeline_vae.baselines import (logistic_level_log_likelihood, pixel_bernoulli_log_likelihood,
                                        pixel_histogram_log_likelihood)
    from pipeline_vae.data import load_data
    from pipeline_vae.inference import CVAE

    images = load_data(data)
    train, test = images.train_images(), images.test_images()
    dims = int(np.prod(test.shape[1:]))

    def row(name, log_p):
        print(f"{name}: {log_p:.2f} nats, {float(bits_per_dim(log_p, dims).numpy()):.3f} bits/dim")

    print(f"{images.description}: {len(train)} train, {len(test)} test images of {dims} values")
    row("per-pixel histogram, 256 values", pixel_histogram_log_likelihood(train, test).mean())
    row("per-pixel Bernoulli, binarized at 0.5", pixel_bernoulli_log_likelihood(train, test).mean())
    levels = np.unique(np.concatenate([np.unique(train), np.unique(test)]))
    for run in runs:
        vae = CVAE.load(run)
        if vae.likelihood.name != "discretized_logistic":
            raise ValueError(f"--runs {run}: a discretized_logistic model expected, got {vae.likelihood.name}")
        mean, _ = vae.encode(test)
        raw = vae.decode(mean, probs=False).reshape(test.shape[:-1] + (2 * test.shape[-1],))
        unit_location, log_scale = location_and_log_scale(tf.constant(raw, tf.float64), LOGISTIC_LOG_SCALE_MIN)
        # the evaluation's own likelihood (TensorFlow, PixelCNN++'s shortcut for tiny bins) on the same outputs
        evaluation = discretized_logistic_log_likelihood(tf.constant(test / 255.0), unit_location, log_scale).numpy()
        location, scale = 255.0 * unit_location.numpy(), 255.0 * np.exp(log_scale.numpy())
        # one "image" per pixel, so the per-pixel terms come back separately
        per_value, per_level = logistic_level_log_likelihood(test.reshape(-1, 1), location.reshape(-1, 1),
                                                             scale.reshape(-1, 1), levels)
        row(f"{run}: log p(x | z = mean), 256 values", per_value.sum() / len(test))
        gap = np.abs(per_value.reshape(len(test), -1).sum(axis=1) - evaluation).mean()
        print(f"{run}: the evaluation's discretized logistic on the same outputs: {evaluation.mean():.2f} nats "
              f"(mean |difference| per image {gap:.3f})")
        row(f"{run}: log p(x | z = mean), the {len(levels)} levels used", per_level.sum() / len(test))
        inner = ((test > levels[0]) & (test < levels[-1])).ravel()
        share = per_value[inner].sum() / per_value.sum()
        print(f"{run}: median logistic scale {np.median(scale):.1f} grey values; of the pixels "
              f"{np.mean(test == levels[0]):.1%} are {levels[0]}, {np.mean(test == levels[-1]):.1%} are {levels[-1]}, "
              f"and the {inner.mean():.1%} between cost {share:.1%} of the 256-value log p")


if __name__ == "__main__":
    sys.exit(main())
