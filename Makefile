# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ../shared/data
PORT ?= 8080
SITE_PORT ?= 8000

.PHONY: run test lint train package bench deploy clean loadtest

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) is $$($(PYTHON) --version 2>&1); install Python 3.11 or newer, or run make PYTHON=python3.11 ..." >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV); on Debian: apt-get install python3-venv" >&2; exit 1; }

# Serving + tests (no TensorFlow): enough to run the function and the site.
# The project itself goes in editable, so `recognizer`, `training`, `bench` and `infra` import by one name.
$(VENV)/.dev-installed: $(PY) requirements-dev.txt function/requirements.txt pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# TensorFlow, for training, the training smoke test and the comparison benchmarks.
$(VENV)/.train-installed: $(VENV)/.dev-installed requirements-train.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-train.txt
	@touch $@

run: $(VENV)/.dev-installed
	@$(PY) infra/run_local.py --port $(PORT) --site-port $(SITE_PORT)

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Two test processes, each taking whole files (a file's server and browser start once), the longest files first
# (tests/conftest.py): about 11 min instead of 16 on two cores. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: lint $(VENV)/.train-installed
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

train: $(VENV)/.train-installed
	$(PY) -m training.train digits --baseline --data-dir $(DATA_DIR)
	$(PY) -m training.train digits --data-dir $(DATA_DIR) --out models
	$(PY) -m training.train characters --baseline --data-dir $(DATA_DIR)
	$(PY) -m training.train characters --data-dir $(DATA_DIR) --out models

# The zip is built with the standard library alone (recognizer/cards.py finds the models): no .venv, so it builds
# wherever `make deploy` starts, even where the function's requirements have no wheels (an Intel Mac's LiteRT).
package:
	PYTHONPATH=function $(PYTHON) infra/package.py

bench: $(VENV)/.train-installed
	$(PY) -m bench.run_all

deploy: package
	bash infra/deploy.sh

clean:
	rm -rf build .pytest_cache .ruff_cache tests/artifacts bench/artifacts

# Text evaluation (issue 14): lines of held-out glyphs, today's per-blob reader beside the search reader.
.PHONY: text-eval
text-eval: $(VENV)/.train-installed
	$(PY) -m training.text_eval --data-dir $(DATA_DIR) --json training/runs/text-eval.json

# A bounded load (requests and seconds) on a deployment, or on the function started here:
# make loadtest [URL=https://...] [REQUESTS=2000] [SECONDS=20] [CONCURRENCY=8] [KIND=canvas|photo|strokes]
loadtest: $(VENV)/.dev-installed
	$(PY) -m bench.loadtest $(if $(URL),--url $(URL)) --requests $(or $(REQUESTS),2000) --seconds $(or $(SECONDS),20) --concurrency $(or $(CONCURRENCY),8) --kind $(or $(KIND),canvas)
