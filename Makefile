# make demo / make test / make lint / make bench: each sets up .venv first if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	# the CPU build of torch first, so sentence-transformers does not pull a CUDA build
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[all]" --group dev
	touch $@

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) examples/demo.py

lint: $(STAMP)
	$(PY) -m ruff check vectordb_manager tests examples benchmarks
	$(PY) -m mypy

$(VENV)/.bench: $(STAMP)
	$(PY) -m pip install -q langchain-community psutil
	touch $@

# the whole suite, ~20 min on 2 cores; it rewrites the tables in docs/performance.md.
# To try it out: make bench BENCH_ARGS=--quick (a few minutes, docs untouched)
BENCH_ARGS ?= --hnsw-1m --wait-quiet 60 --write-docs
bench: $(VENV)/.bench
	HF_HUB_OFFLINE=1 $(PY) benchmarks/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
