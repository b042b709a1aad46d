# Two entry points: `make demo` runs the main job, `make test` runs the test suite.
# Both create or refresh .venv/ when pyproject.toml or this file changed.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel of torch; a user with a GPU overrides it, e.g.
#   make test TORCH_SPEC="torch==2.13.0" PIP_TORCH_ARGS="--extra-index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
# The M4 folder of `make demo`; unset, the pipeline finds the files itself (pipelines/m4_hourly.yaml):
# $TSFORECAST_DATA_DIR/m4, ../shared/data/m4, else a one-off download into ~/.cache/tsforecast/m4.
M4_DIR ?=
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist), a test file each at a time: the suite waits on subprocesses,
# servers and sockets for much of its time. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

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
	@status=0; $(if $(M4_DIR),M4_DIR="$(M4_DIR)" )$(VENV)/bin/tsforecast run pipelines/m4_hourly.yaml || status=$$?; \
	echo ""; \
	echo "Outputs:  outputs/m4-hourly/<as-of>/ (today's date; outputs/m4-hourly/current/ is the latest kept model):"; \
	echo "          forecasts.parquet, baseline_forecasts.parquet, comparison.csv, evaluation.csv, model.safetensors"; \
	echo "Manifest: outputs/m4-hourly/<as-of>/manifest.json (inputs and checksums, config, versions, metrics)"; \
	echo "MLflow:   ./mlflow.db (runs, metrics, model registry) and ./mlartifacts/ (plots, tables, models)"; \
	echo "          browse it: $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db"; \
	echo "          then open http://127.0.0.1:5000, experiment m4-hourly (the LSTM's training curves are in its fit run)"; \
	exit $$status

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check tsforecast tests benchmarks
	$(VENV)/bin/ruff format --check tsforecast tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
