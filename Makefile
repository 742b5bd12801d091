# Every install path uses uv.lock (uv sync --frozen). uv itself comes from PyPI if it is missing.
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen

.PHONY: install lint typecheck test check bench demo clean

install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	./scripts/install-system-packages
	$(UV) sync --frozen

lint: install
	$(RUN) ruff check forwarder sinks tests benchmarks

typecheck: install
	$(RUN) mypy

# The whole suite: lint and strict type checks first (cheap, and they gate CI too), then every test.
test: lint typecheck
	$(RUN) pytest -q

check: test

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(RUN) python $$b || exit 1; done

demo: install
	$(RUN) sf-forwarder demo

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis
