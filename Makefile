# Two commands for a newcomer: `make ask Q="..."` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
Q ?= Why can't Putin afford a peace deal?

.PHONY: setup ask test lint bench train clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch lies on disk; install it first so pip never pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

ask: $(STAMP)
	$(PY) bot.py ask "$(Q)"

test: $(STAMP)
	$(PY) -m pytest -q

# Style, types, and the architecture (import-linter contracts in pyproject.toml).
lint: $(STAMP)
	$(PY) -m ruff check bot tests bench train bot.py
	$(PY) -m ruff format --check bot tests bench train bot.py
	$(PY) -m mypy bot
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m bench.run_all

# Rebuild every shipped artifact from ../shared/eval and print the leave-one-library-out
# table (hours on 2 cores: a LoRA fold takes ~9 minutes). Never run by `make test`.
TRAIN_DIR ?= bench/results/train
train: $(STAMP)
	$(PY) -m pip install --quiet -e '.[train]'
	$(PY) -m train.probe_finetune export $(TRAIN_DIR)
	$(PY) -m train.probe_finetune lora $(TRAIN_DIR) $(TRAIN_DIR)
	$(PY) -m train.lora_artifact $(TRAIN_DIR)
	$(PY) -m train.rank_features
	$(PY) -m train.fit_answering
	$(PY) -m train.fit_broad
	$(PY) -m bench.bench_quality --lolo

clean:
	rm -rf index .pytest_cache
