# exchange-processor: one command to run it, one to test it. Everything installs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INFRA_VENV := .venv-infra
# pytest-xdist workers for `make test` and `make test-fast` (README "Running the tests");
# PYTEST_WORKERS=0 runs the tests in this one process, for pdb or print debugging.
PYTEST_WORKERS ?= 3
export PYTEST_WORKERS

.PHONY: help run stop test test-fast test-deps lint layers format bench deps doctor clean

help:
	@echo "make run    - start the sandbox, Azurite and the devhost with a ready connection"
	@echo "make stop   - end what an earlier make run of this checkout left running"
	@echo "make test   - install what is needed and run the whole test suite"
	@echo "make bench  - run the benchmarks (after make test)"
	@echo "make lint   - ruff check + format check, layer contracts, pyright"
	@echo "make doctor - azure-functions-doctor on the repository (make test checks its findings)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> Python environment ($(VENV))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar on -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> Azurite and pyright (npm ci)"
	npm ci --no-audit --no-fund
	@touch $@

$(INFRA_VENV)/.installed: requirements-infra.txt
	@echo "==> Offline Bicep checkers ($(INFRA_VENV): checkov, pycep-parser)"
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --progress-bar on -r requirements-infra.txt
	@touch $@

deps: $(VENV)/.installed node_modules/.installed
	@bash scripts/ensure-chromium.sh

# Ports: SANDBOX_PORT=8443 DEVHOST_PORT=7071 make run (state in .state/, settings in
# local.settings.json, both git-ignored).
run: $(VENV)/.installed node_modules/.installed
	@PYTHONUNBUFFERED=1 $(PY) -m devhost.run_all

# Ends the processes .state/processes.json names (standard library only: no install needed).
stop:
	@$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m devhost.stop

# Layer contracts (pyproject.toml [tool.importlinter]) and pyright (pyrightconfig.json, basic).
layers: $(VENV)/.installed node_modules/.installed
	$(VENV)/bin/lint-imports
	node_modules/.bin/pyright

lint: $(VENV)/.installed layers
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The three installs are independent of each other: side by side they take the time of the
# longest (each one's output is printed in one piece when it is done).
test-deps:
	@$(MAKE) --no-print-directory -j3 --output-sync=target $(VENV)/.installed node_modules/.installed $(INFRA_VENV)/.installed
	@bash scripts/ensure-chromium.sh

# ruff first (a second); then pytest, with the layer contracts and pyright beside it
# (scripts/test-suite.sh prints their report after pytest's and fails if either failed).
# Python may cache compiled modules here (__pycache__, git-ignored): the suite starts some
# hundreds of Python processes that would otherwise each compile the same sources again.
test: export PYTHONDONTWRITEBYTECODE :=
test: test-deps
	@echo "==> ruff"
	$(VENV)/bin/ruff check .
	@bash scripts/test-suite.sh

test-fast: export PYTHONDONTWRITEBYTECODE :=
test-fast: $(VENV)/.installed
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not browser and not slow"

# The third-party view of the app as Azure sees it; make test runs it too
# (tests/infra/test_functions_doctor.py) and docs/deploy.md explains what it still reports.
doctor: $(VENV)/.installed
	$(VENV)/bin/azure-functions-doctor doctor --profile full --hosting-plan flex-consumption

$(VENV)/.bench-installed: requirements-bench.txt $(VENV)/.installed
	@echo "==> benchmark peers and plotting (requirements-bench.txt)"
	$(PY) -m pip install --progress-bar on -r requirements-bench.txt
	@touch $@

# BENCH="scale_out" make bench runs only the named rows (bench/__main__.py MODULES).
bench: deps $(VENV)/.bench-installed
	$(PY) -m bench $(BENCH)

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .state .run .pytest_cache .ruff_cache
