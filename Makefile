# Two commands do all set-up: `make demo` and `make test` create (or reuse) .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick lint bench clean serve stop

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## generate the synthetic benchmark and evaluate both built-in models
	$(VENV)/bin/evalcore demo

serve: $(STAMP)  ## local Prefect server + work pool + deployments + worker (docs/operations.md)
	$(VENV)/bin/evalcore serve

stop:  ## stop the worker, then the server, that `make serve` started
	$(VENV)/bin/evalcore stop

test: $(STAMP)  ## the whole suite, as CI runs it
	$(PY) -m pytest -q -ra

test-quick: $(STAMP)  ## skip the end-to-end Prefect-server tests
	$(PY) -m pytest -q -ra -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf outputs work data .pytest_cache
