"""Where should Rescale/Binarize run? Measure training steps/s of the two placements, alternating, in one process.

(a) NumpyOps in the Pipeline: FE's ExpandDims + Binarize(threshold=128) per example in the loader workers, so the
    loader ships float32 [B, 28, 28, 1];
(b) TensorOps in the Network (the project's default): the loader ships raw uint8 [B, 28, 28], and Rescale + Binarize
    run in the traced train step.
Both produce identical tensors (uint8 >= 128 is x / 255 > 0.5). Usage:

    .venv/bin/python benchmarks/preprocess_placement.py [--rounds 3] [--steps 200]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import fastestimator as fe  # noqa: E402
from fastestimator.op.numpyop.univariate import Binarize as NumpyBinarize  # noqa: E402
from fastestimator.op.numpyop.univariate import ExpandDims  # noqa: E402
from fastestimator.trace.trace import Trace  # noqa: E402

import pipeline_vae  # noqa: E402
from pipeline_vae.builders import get_pipeline  # noqa: E402


class StepTimer(Trace):
    """Steps/s over training steps `skip`+1..end (excludes tracing and loader start-up)."""
    def __init__(self, skip: int) -> None:
        super().__init__(mode="train")
        self.skip, self.step, self.start, self.rate = skip, 0, None, None

    def on_batch_end(self, data) -> None:
        self.step += 1
        if self.step == self.skip:
            self.start = time.perf_counter()

    def on_epoch_end(self, data) -> None:
        self.rate = (self.step - self.skip) / (time.perf_counter() - self.start)


def run(placement: str, data, steps: int) -> float:
    if placement == "pipeline":
        ops = {"rescale": None, "binarize": None}
        pipe_ops = [ExpandDims(inputs="x", outputs="x", axis=-1), NumpyBinarize(threshold=128, inputs="x", outputs="x")]
    else:
        ops, pipe_ops = None, []
    graph = pipeline_vae.build_graph(latent_dim=2, learning_rate=1e-3, ops=ops)
    timer = StepTimer(skip=20)
    est = fe.Estimator(pipeline=get_pipeline(batch_size=100, data=data, ops=pipe_ops),
                       network=fe.Network(ops=graph.ops), epochs=1, traces=[timer], train_steps_per_epoch=steps,
                       log_steps=None)
    est.fit(warmup=False)
    return timer.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    fe.record_history(False)
    fe.estimator.draw = lambda: None  # FE's banner, once per fit
    data = pipeline_vae.load_mnist()
    rates = {"pipeline": [], "network": []}
    for _ in range(args.rounds):
        for placement in rates:
            rates[placement].append(run(placement, data, args.steps))
    for placement, values in rates.items():
        print(f"{placement:8s} steps/s: {', '.join(f'{v:.1f}' for v in values)}  median {statistics.median(values):.1f}")
    ratio = statistics.median(rates["network"]) / statistics.median(rates["pipeline"])
    print(f"network / pipeline median ratio: {ratio:.2f} (batch 100, {args.steps} steps, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
