# The two commands of the README: `make up` runs the system, `make test` runs every test.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PACKAGES := -e kit -e services/customer -e services/sales -e services/service-desk -e services/marketing -e services/analytics -e gateway
STAMP := $(VENV)/.installed

.PHONY: up test install bench bench-gateway demo clean

up: install
	$(PY) scripts/up.py

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): requirements/constraints.txt requirements/test.txt kit/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c requirements/constraints.txt $(PACKAGES) -r requirements/test.txt
	touch $(STAMP)

# every benchmark and one table of results (bench/results/all.md); options: make bench ARGS="--quick"
bench: install
	$(PY) bench/all.py $(ARGS)

# the gateway benchmark alone (about 2 minutes)
bench-gateway: install
	$(PY) bench/run.py $(ARGS)

# demo data through the public API of the running system (`make up` in another terminal);
# options: make demo ARGS="--customers 1000 --seed 3" (python -m demo --help)
demo: install
	$(PY) -m demo $(ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache
