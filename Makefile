# Two commands do all set-up: `make demo` and `make test` create (or reuse) .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick lint bench clean serve stop lock

# Everything (`local`: torch, transformers, ...; `dev`: pytest, ruff), at the versions
# constraints.txt pins: the same set on every machine and in CI.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[local,cluster,dev]'
	touch $(STAMP)

demo: $(STAMP)  ## generate the synthetic benchmark and evaluate both built-in models
	$(VENV)/bin/evalcore demo

serve: $(STAMP)  ## local Prefect server + work pool + deployments + worker (docs/operations.md)
	$(VENV)/bin/evalcore serve

stop:  ## stop the worker, then the server, that `make serve` started
	$(VENV)/bin/evalcore stop

# Two xdist workers, each module on one of them, the end-to-end (`slow`) modules first,
# the `alone` tests last with nothing beside them (tests/conftest.py)
XDIST := -n 2 --dist loadgroup --no-loadscope-reorder

test: $(STAMP)  ## the whole suite, as CI runs it
	$(PY) -m pytest -q -ra $(XDIST)

test-quick: $(STAMP)  ## skip the end-to-end Prefect-server tests
	$(PY) -m pytest -q -ra $(XDIST) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

lock:  ## re-resolve pyproject.toml's ranges in a fresh venv and pin the result
	rm -rf /tmp/evalcore-lock && $(PYTHON) -m venv /tmp/evalcore-lock
	/tmp/evalcore-lock/bin/python -m pip install -q --upgrade pip
	/tmp/evalcore-lock/bin/python -m pip install -q -e '.[local,cluster,dev]'
	{ sed -n '/^#/p' constraints.txt; /tmp/evalcore-lock/bin/python -m pip freeze \
	  --exclude-editable | grep -v '^video-evalcore'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf /tmp/evalcore-lock

clean:
	rm -rf outputs work data .pytest_cache
