# Two entry points: `make demo` runs the main job, `make test` runs the test suite.
# Both create or refresh .venv/ when pyproject.toml or this file changed.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel of torch; a user with a GPU overrides it, e.g.
#   make test TORCH_SPEC="torch==2.13.0" PIP_TORCH_ARGS="--extra-index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
M4_DIR ?= ../shared/data/m4
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	# The torch spec again, so resolving the package's own dependencies never swaps in another torch.
	$(VENV)/bin/python -m pip install -q $(PIP_TORCH_ARGS) -e ".[dev]" "$(TORCH_SPEC)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python benchmarks/m4.py --frequency hourly --data-dir $(M4_DIR) \
		--models naive,snaive,naive2,ses,holt,damped,theta,autoets

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check tsforecast tests benchmarks
	$(VENV)/bin/ruff format --check tsforecast tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
