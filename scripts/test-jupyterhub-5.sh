#!/usr/bin/env bash
# Runs the fast tiers (unit, lifecycle) under JupyterHub 5.5, the version of the Zero
# to JupyterHub hub image, in their own virtualenv (created once, from requirements.lock
# with only JupyterHub changed; this checkout installed editable). Extra arguments go to
# pytest. VENV and PYTHON override where the venv lives and which Python makes it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-jh55}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    grep -v '^jupyterhub==' requirements.lock > "$VENV/requirements-jh55.txt"
    "$VENV/bin/pip" install -q -r "$VENV/requirements-jh55.txt" 'jupyterhub==5.5.0'
    "$VENV/bin/pip" install -q --no-deps -e . -e simulator
fi
PYTHONPATH="$PWD:$PWD/simulator" exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -m "not e2e" tests/unit tests/lifecycle "$@"
