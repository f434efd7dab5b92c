# Two commands for a newcomer: `make ask Q="..."` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
Q ?= Why can't Putin afford a peace deal?

.PHONY: setup ask test lint bench clean

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

clean:
	rm -rf index .pytest_cache
