# Two entry points: `make demo` (build, train, export and try a model on the demo project)
# and `make test` (the whole test suite). Both create the virtual environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Strict editable install: only the packages listed in pyproject.toml are importable, exactly
# as in the wheel; re-run it when a source file is added so the link tree stays complete.
SOURCES := $(shell find core plugins desktop -name '*.py' 2>/dev/null)
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml $(SOURCES)
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "annotune needs Python 3.11 or newer (found $(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/annotune demo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check core plugins desktop tests bench

clean:
	rm -rf $(VENV) build dist *.egg-info demo-project
