# Two entry points: `make demo` (build, train, export and try a model on the demo project)
# and `make test` (the whole test suite). Both create the virtual environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Strict editable install: only the packages listed in pyproject.toml are importable, exactly
# as in the wheel; re-run it when a source file is added so the link tree stays complete.
SOURCES := $(shell find core plugins desktop -name '*.py' 2>/dev/null)
STAMP := $(VENV)/.installed

# PyTorch fitted to the machine: without an NVIDIA GPU (no nvidia-smi) the CPU build from
# PyTorch's CPU wheel index (a fraction of the size of the CUDA build PyPI serves on Linux);
# with one, the default index's CUDA build. Override either, e.g. `make demo TORCH_INDEX=`
# (default index) or TORCH_INDEX=https://download.pytorch.org/whl/cu128. A torch already in
# the environment at 2.4 or newer is kept and nothing is fetched.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,$(TORCH_CPU_INDEX))
TORCH_VERSION ?= 2.13.0
TORCH_OK := import sys, torch; v = torch.__version__.split('+')[0].split('.'); \
	sys.exit(tuple(map(int, v[:2])) < (2, 4))

.PHONY: demo test lint install app app-test clean print-torch-index

$(STAMP): pyproject.toml $(SOURCES)
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "annotune needs Python 3.11 or newer (found $(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "$(TORCH_OK)" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
			'torch==$(TORCH_VERSION)'
	$(BIN)/python -m pip install --quiet -e '.[all,dev]' --config-settings editable_mode=strict
	$(BIN)/python -m annotune.core.base_model --if-missing
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/annotune demo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest

# mypy reads the packages as installed (the strict editable install's link tree), because the
# folders core/ and plugins/ are only importable under their annotune.* names.
LINK_TREE = $(BIN)/python -c 'import annotune.core, pathlib; \
	print(pathlib.Path(annotune.core.__path__[0]).parent.parent)'

lint: $(STAMP)
	$(BIN)/ruff check core plugins desktop tests bench
	MYPYPATH="$$($(LINK_TREE))" $(BIN)/mypy -p annotune.core -p annotune.plugins

# The desktop app as one folder (PyInstaller): dist/annotune/ and a .tar.gz beside it.
app: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[all,dev,app]' --config-settings editable_mode=strict
	$(BIN)/python packaging/build.py

# Build the app and walk through it offscreen (label, predict, train through this venv).
app-test: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[all,dev,app]' --config-settings editable_mode=strict
	ANNOTUNE_APP_TEST=1 QT_QPA_PLATFORM=offscreen $(BIN)/pytest tests/packaging -q

print-torch-index:
	@echo '$(TORCH_INDEX)'

clean:
	rm -rf $(VENV) build dist *.egg-info demo-project
