# The two commands a newcomer runs (see README): `make demo` and `make test`.
# Everything installs into .venv; torch 2.14.1 and torchvision 0.29.1 come from this machine kind's
# local disk through plain pip on Python 3.11 (uv and poetry would download several GB instead).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
IDEA ?= a red star at night

.PHONY: install demo test test-all lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job: the agent loop on the bundled pocket models, offline, in seconds.
demo: install
	$(BIN)/imagineer imagine "$(IDEA)"

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-all: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m ''

lint: install
	$(BIN)/ruff check imagineer tests benchmarks
	$(BIN)/ruff format --check imagineer tests benchmarks
	$(BIN)/mypy imagineer

bench: install
	$(BIN)/python benchmarks/overhead.py
