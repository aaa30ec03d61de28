# Setup in two commands: `make run` (venv + requirements + server) and `make test` (venv + suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: venv run test test-fast lint bench clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/uvicorn server:app --host $(HOST) --port $(PORT)

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not e2e"

lint: venv
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check . && $(BIN)/mypy .

bench: venv
	$(BIN)/python bench/stream_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
