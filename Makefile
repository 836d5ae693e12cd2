# Two commands do everything: `make demo` and `make test`. Each creates .venv
# and installs mascope with what it needs on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mascope-installed
LOCAL_STAMP := $(VENV)/.mascope-local
# llama-cpp-python compiles from source. A native build (-DGGML_NATIVE=ON,
# the default) enables AMX kernels that crash on these CPUs, so pin the ISA.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# mascope never loads the multimodal (mtmd/llava) library: skip building it.
LLAMA_CMAKE_ARGS += -DLLAVA_BUILD=OFF
# Nor llama.cpp's common library, which llama-cpp-python forces on but neither it
# nor mascope loads; it is over half the compile (build-support/ says how).
LLAMA_CMAKE_ARGS += -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/build-support/llama_no_common.cmake
# Compile on every core (cmake --build reads this; the default is one job).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)


.PHONY: demo test lint typecheck unit bench docs setup clean

setup: $(STAMP)

# `make demo` needs mascope and the embedded model only; `make test` adds the
# dev extra (test tools, PostgreSQL, Ray, OpenTelemetry, the real frameworks).
$(LOCAL_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mascope needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
		$(BIN)/python -m pip install --progress-bar off -e '.[local]'
	# An editable install gets no bytecode, and PYTHONDONTWRITEBYTECODE (set on
	# these machines) stops Python caching it: compile once so commands start fast.
	$(BIN)/python -m compileall -q mascope
	touch $(LOCAL_STAMP)

$(STAMP): $(LOCAL_STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
		$(BIN)/python -m pip install --progress-bar off -e '.[local,dev]'
	touch $(STAMP)

demo: $(LOCAL_STAMP)
	$(BIN)/mascope demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check mascope tests benchmarks
	$(BIN)/ruff format --check mascope tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# docs/teams.md and docs/team.schema.json are generated from the team-file models;
# a test fails when they are out of date.
docs: $(STAMP)
	$(BIN)/mascope team docs > docs/teams.md
	$(BIN)/mascope team schema > docs/team.schema.json

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_local_model.py --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
