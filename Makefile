# kit: every target bootstraps its own virtual environment (.venv) from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
KIT     = $(BIN)/kit

# Real Kaggle files in data/pcam/raw (kit download pcam) are used when present; otherwise the embedded
# default, a synthetic PCam set, so the pipeline runs on a fresh machine with no data and no credentials.
ifneq ($(wildcard data/pcam/raw/train_labels.csv),)
PCAM_RAW   ?= data/pcam/raw
PCAM_STORE ?= data/pcam/pcam.h5
else
PCAM_RAW   ?= data/pcam-synth/raw
PCAM_STORE ?= data/pcam-synth/pcam.h5
PCAM_SYNTH  = 1
endif
SYNTH_TRAIN ?= 2000
SYNTH_TEST  ?= 500

.PHONY: install test pcam-data pcam-submit clean

$(BIN)/kit: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/kit

install: $(BIN)/kit

test: $(BIN)/kit
	$(BIN)/python -m pytest -q

$(PCAM_RAW)/train_labels.csv: | $(BIN)/kit
	$(KIT) synth pcam $(PCAM_RAW) --train $(SYNTH_TRAIN) --test $(SYNTH_TEST) --seed 0

pcam-data: $(BIN)/kit $(PCAM_RAW)/train_labels.csv
	$(KIT) ingest pcam --raw $(PCAM_RAW) --store $(PCAM_STORE)

pcam-submit: pcam-data
	@echo "pcam-submit: the pipeline currently ends at the store ($(PCAM_STORE)); training and submission land with later issues."

clean:
	rm -rf $(VENV) *.egg-info
