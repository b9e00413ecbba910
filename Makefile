# geoest: `make demo` runs the main job on the embedded default, `make test` runs the suite.
# Both create .venv in the repository root and install geoest into it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2

.PHONY: install test test-fast demo clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,scene,download,ray]'
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-fast: $(VENV)/.installed
	$(PY) -m pytest -n 2 -m "not slow" tests

demo: $(VENV)/.installed
	$(PY) -m geoest.demo --output_dir=demo_output

clean:
	rm -rf $(VENV) demo_output *.egg-info .pytest_cache
