# The two front-door commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench install clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Everything from a fresh clone: venv, install, Redis, migrations, demo data, all processes.
run: $(STAMP)
	$(PY) scripts/run.py

## The whole suite, from a fresh clone, with nothing running beforehand: two processes
## (pytest-xdist), each test file whole in one of them, each with its own Redis and servers.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) bench/bench_emulator.py

clean:
	rm -rf var .pytest_cache
