# The two commands of the README: `make demo` and `make test`.
# Everything they need is installed here, never by hand.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHP    := node_modules/.bin/configurable-http-proxy
PYTEST_ARGS ?=
# The main suite runs in this many pytest-xdist workers, a test file each at a time (one per
# core, at most 4: each e2e test runs a hub, a proxy, a simulator and Chromium). On the
# 2-core CI machine this halves the suite's 11 minutes; PYTEST_WORKERS=0 runs it in-process.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: demo test test-matrix lint system-deps venv bench bench-hub bench-sim bench-cluster clean

$(STAMP): pyproject.toml simulator/pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e . -e ./simulator
	touch $@

venv: $(STAMP)

$(CHP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

# ruff on the whole tree; mypy on each distribution with its own [tool.mypy] settings
# (the product's Kubernetes layer and pure modules strictly).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	cd simulator && $(abspath $(PY)) -m mypy

test: $(STAMP) $(CHP) system-deps lint
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(MAKE) test-matrix

# The fast tiers again under the Zero to JupyterHub hub image's versions and under the
# lowest versions pyproject.toml allows (scripts/compat-matrix.sh; uv virtualenvs).
test-matrix: $(STAMP)
	UV="$(abspath $(VENV))/bin/uv" bash scripts/compat-matrix.sh

# make demo DEMO_ARGS="--kubeconfig ~/.kube/config" runs the same hub against a real cluster.
demo: $(STAMP) $(CHP)
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) -m devtools.demo $(DEMO_ARGS)

# The headline spawn storm (see benchmarks/README.md for the sweep, idle, fault and memory modes).
bench: $(STAMP)
	$(PY) -m benchmarks.spawn_storm --spawner async_kubespawner.KubeSpawner --users 1000 --ready-spread 10 \
		--json benchmarks/results/storm-1000.json --markdown benchmarks/results/storm-1000.md \
		--plots benchmarks/results

# The whole hub (JupyterHub + proxy + simulator) at 100, 1,000 and 5,000 users, ours, operator
# mode and upstream 7.1 (installed into .bench/, never imported by the package) side by side.
# HUB_ENV=z2jh (or lowest): the hub runs in that compatibility-matrix virtualenv (JupyterHub
# 5.5, as the Zero to JupyterHub image has it), built first; its results go to a folder of
# their own.
bench-hub: $(STAMP) $(CHP)
	$(if $(HUB_ENV),MATRIX_BUILD_ONLY=1 UV="$(abspath $(VENV))/bin/uv" bash scripts/compat-matrix.sh $(HUB_ENV))
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(PY) -m benchmarks.hub_sweep --users $(or $(USERS),100,1000,5000) \
		--out benchmarks/results/hub$(if $(HUB_ENV),/$(HUB_ENV)) \
		$(if $(HUB_ENV),--hub-python .venv-matrix/$(HUB_ENV)/bin/python)

# The simulator alone: stored pods, watches, creates/s, watch delivery latency.
bench-sim: $(STAMP)
	$(PY) -m benchmarks.sim_load --json benchmarks/results/sim_load.json

# The simulated cluster: how fast pods go from created to Ready.
bench-cluster: $(STAMP)
	$(PY) -m benchmarks.cluster_lifecycle --pods 1000 --nodes 20 --json benchmarks/results/cluster_lifecycle.json

clean:
	rm -rf $(VENV) node_modules .pytest_cache test-artifacts
