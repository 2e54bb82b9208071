# kit: every target bootstraps its own virtual environment (.venv) from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
KIT     = $(BIN)/kit

# Real Kaggle files in data/pcam/raw (kit download pcam) are used when present; otherwise the embedded
# default, a synthetic PCam set, so the pipeline runs on a fresh machine with no data and no credentials.
# With real data the submission is uploaded once when Kaggle credentials exist (PCAM_SUBMIT_FLAGS=--submit).
# PCAM_TRAIN_FLAGS adds `kit train` options (e.g. --max-minutes 600 --set model.backbone=densenet169).
ifneq ($(wildcard data/pcam/raw/train_labels.csv),)
PCAM_RAW   ?= data/pcam/raw
PCAM_STORE ?= data/pcam/pcam.h5
PCAM_RUN   ?= runs/pcam/default
PCAM_TRAIN_FLAGS ?=
PCAM_SUBMIT_FLAGS ?= --submit
else
PCAM_RAW   ?= data/pcam-synth/raw
PCAM_STORE ?= data/pcam-synth/pcam.h5
PCAM_RUN   ?= runs/pcam/synth-default
PCAM_TRAIN_FLAGS ?= --max-minutes 3
PCAM_SUBMIT_FLAGS ?=
endif
SYNTH_TRAIN ?= 2000
SYNTH_TEST  ?= 500

.PHONY: install test test-fast lint format pcam-download pcam-data pcam-train pcam-predict pcam-submit kernel kernel-push gpu-check clean

$(BIN)/kit: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,test-backends]"
	touch $(BIN)/kit

install: $(BIN)/kit

# The whole suite (CI's command); test-fast skips the end-to-end tests marked slow, for the edit-test loop.
test: $(BIN)/kit
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/kit
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(BIN)/kit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/kit
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(PCAM_RAW)/train_labels.csv: | $(BIN)/kit
	$(KIT) synth pcam $(PCAM_RAW) --train $(SYNTH_TRAIN) --test $(SYNTH_TEST) --seed 0

pcam-download: $(BIN)/kit
	$(KIT) download pcam

pcam-data: $(BIN)/kit $(PCAM_RAW)/train_labels.csv
	$(KIT) ingest pcam --raw $(PCAM_RAW) --store $(PCAM_STORE)

# Each step skips what is already done: a finished store, finished folds, predictions made with the same TTA,
# and a submission identical to one already written.
pcam-train: pcam-data
	$(KIT) train pcam --store $(PCAM_STORE) --run-dir $(PCAM_RUN) $(PCAM_TRAIN_FLAGS)

pcam-predict: pcam-train
	$(KIT) predict $(PCAM_RUN) --oof

pcam-submit: pcam-predict
	$(KIT) ensemble $(PCAM_RUN) $(PCAM_SUBMIT_FLAGS)

# A Kaggle kernel: the kit sources as a dataset plus a driver script running the pipeline offline on Kaggle's GPU.
# KERNEL_FLAGS adds `kit kernel build` options (e.g. --user me --max-minutes 540 --set train.lr=1e-3).
KERNEL_COMPETITION ?= pcam
KERNEL_FLAGS ?=
kernel: $(BIN)/kit
	$(KIT) kernel build $(KERNEL_COMPETITION) --dir build/kernel $(KERNEL_FLAGS)

kernel-push: kernel
	$(KIT) kernel push --dir build/kernel

# One JSON summary of the figures that need an accelerator: `kit bench train` for three backbones at float32 and
# mixed precision (float32 only on a CPU), `kit bench tta`, and a 2-fold 2-minute synthetic pipeline to a
# submission. Any installed Keras backend (KERAS_BACKEND=jax on a GPU machine without TensorFlow).
GPU_CHECK_FLAGS ?=
gpu-check: $(BIN)/kit
	$(BIN)/python -m kit.gpu_check $(GPU_CHECK_FLAGS)

clean:
	rm -rf $(VENV) *.egg-info
