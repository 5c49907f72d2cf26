# jitnode: every target builds its own virtualenv from pyproject.toml, so a fresh machine needs only python3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz chaos lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cli demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $${JITNODE_TEST_WORKERS:-2}

# The HTTP fuzz tests (tests/fuzz) with many more examples than CI's bounded run.
fuzz: $(STAMP)
	JITNODE_FUZZ_EXAMPLES=$${JITNODE_FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz tests/fuzz

# The fault-injection suite (tests/chaos): each fault, then the invariant check; ends with a
# table of faults, runs and violations.
chaos: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m chaos tests/chaos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
