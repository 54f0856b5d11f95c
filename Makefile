# Two commands do everything on a fresh machine:
#   make validate   create .venv if missing, install NSM, run the main job
#   make test       create .venv if missing, install NSM with test tools, run the test suite
#                   (then its rounding-sensitive tests again under torch's portable CPU kernels)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: validate test install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch==2.13.0 resolves to the CPU wheel on this machine; pinned in pyproject.toml.
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

validate: $(BIN)/.installed
	$(BIN)/nsm validate

# Another host rounds differently: torch's portable kernels stand in for one, and the tests whose
# assertions rest on floating-point results (marker `rounding`) run again under them.
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -q -m rounding

clean:
	rm -rf $(VENV) runs data_cache .pytest_cache
