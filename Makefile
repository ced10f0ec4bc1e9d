# The two commands of the README: `make demo` and `make test`.
# Everything they need is installed here, never by hand.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHP    := node_modules/.bin/configurable-http-proxy
PYTEST_ARGS ?=

.PHONY: demo test lint system-deps venv bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

$(CHP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) $(CHP) system-deps lint
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

# make demo DEMO_ARGS="--kubeconfig ~/.kube/config" runs the same hub against a real cluster.
demo: $(STAMP) $(CHP)
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) -m async_kubespawner.demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.spawn_storm --users 1000 --ready-spread 10 --json benchmarks/results/spawn_storm.json

clean:
	rm -rf $(VENV) node_modules .pytest_cache test-artifacts
