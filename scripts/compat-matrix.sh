#!/usr/bin/env bash
# The compatibility matrix: the fast test tiers (unit, lifecycle, operator, simulator) under
#   z2jh    the Zero to JupyterHub hub image's versions (JupyterHub 5.5, kubernetes_asyncio
#           36.1) on the newest Python this machine has;
#   lowest  the lowest versions pyproject.toml allows, on the lowest Python it allows.
# The locked versions are the main `make test` run. Each entry gets its own virtualenv
# under .venv-matrix/, built with uv from the package index in seconds.
#
# Usage: scripts/compat-matrix.sh [z2jh|lowest ...]   (default: all entries)
#        MATRIX_BUILD_ONLY=1 scripts/compat-matrix.sh z2jh   (build the virtualenv, run nothing:
#        `make bench-hub HUB_ENV=z2jh` runs the whole-hub benchmark's hub in it)
set -euo pipefail
cd "$(dirname "$0")/.."

UV="${UV:-.venv/bin/uv}"
ROOT_DIR=.venv-matrix
TIERS=(tests/unit tests/lifecycle tests/operator tests/sim)
# Run by the main suite only, as they check this repository rather than the versions: the
# browser form test (Chromium), the wheel-building test (pip, hatchling), and the check
# that docs/configuration.md matches the settings' help texts (JupyterHub's own base-class
# help texts, which differ between JupyterHub releases, are rendered in it). Also the
# benchmark harness's own end-to-end runs (tiny storms that check every figure is
# reported): they exercise the same spawner and simulator paths the tiers above already
# cover under each entry's versions, and take about a minute per entry.
PYTEST_OPTS=(-q -p no:cacheprovider -m "not e2e"
             --ignore tests/unit/test_distributions.py
             --ignore tests/unit/test_benchmarks.py
             --ignore tests/lifecycle/test_benchmark_storm.py
             --ignore tests/operator/test_benchmark.py
             --deselect tests/unit/test_config_reference.py::test_committed_reference_is_up_to_date)

pyenv_root() { command -v pyenv >/dev/null && pyenv root || echo "$HOME/.pyenv"; }

# The newest (or lowest supported) CPython installed by pyenv, else the one on PATH.
find_python() {
  local order="$1" found=""
  local versions
  versions=$(ls -d "$(pyenv_root)"/versions/3.1[1-9]* 2>/dev/null | sort -V || true)
  if [[ -n "$versions" ]]; then
    if [[ "$order" == newest ]]; then found=$(echo "$versions" | tail -1); else found=$(echo "$versions" | head -1); fi
    echo "$found/bin/python"
  else
    command -v python3
  fi
}

make_env() {  # name python install-args...
  local name="$1" python="$2"; shift 2
  local venv="$ROOT_DIR/$name"
  rm -rf "$venv"
  "$UV" venv -q --python "$python" "$venv"
  VIRTUAL_ENV="$venv" "$UV" pip install -q "$@"
}

run_entry() {
  local name="$1" python
  case "$name" in
    z2jh)
      python=$(find_python newest)
      make_env z2jh "$python" -r requirements.lock --override scripts/matrix/z2jh.txt -e . -e ./simulator
      ;;
    lowest)
      python=$(find_python lowest)
      make_env lowest "$python" --resolution lowest-direct -r scripts/matrix/lowest.txt
      ;;
    *) echo "unknown matrix entry: $name (z2jh, lowest)" >&2; return 2 ;;
  esac
  local venv="$ROOT_DIR/$name"
  if [[ "${MATRIX_BUILD_ONLY:-}" == 1 ]]; then
    echo "== matrix $name: built $venv"
    return 0
  fi
  echo "== matrix $name: $("$venv/bin/python" -c 'import sys, jupyterhub, kubernetes_asyncio, traitlets; print(f"Python {sys.version.split()[0]}, JupyterHub {jupyterhub.__version__}, kubernetes_asyncio {kubernetes_asyncio.__version__}, traitlets {traitlets.__version__}")')"
  PATH="$PWD/node_modules/.bin:$PATH" "$venv/bin/python" -m pytest "${PYTEST_OPTS[@]}" "${TIERS[@]}"
}

entries=("$@")
[[ ${#entries[@]} -eq 0 ]] && entries=(z2jh lowest)
if [[ ${#entries[@]} -eq 1 || "${MATRIX_SERIAL:-}" == 1 ]]; then
  for entry in "${entries[@]}"; do
    run_entry "$entry"
  done
  exit 0
fi
# Several entries: at once, each in its own virtualenv, with its output kept and printed
# whole when it ends (the entries are single pytest processes; together they use the
# machine's two cores and take about five minutes off the run). MATRIX_SERIAL=1 runs
# them one after another.
mkdir -p "$ROOT_DIR"
pids=()
for entry in "${entries[@]}"; do
  run_entry "$entry" >"$ROOT_DIR/$entry.log" 2>&1 &
  pids+=("$!")
done
status=0
for i in "${!entries[@]}"; do
  entry_status=0
  wait "${pids[$i]}" || entry_status=$?
  cat "$ROOT_DIR/${entries[$i]}.log"
  if [[ $entry_status -ne 0 ]]; then
    status=1
    echo "== matrix ${entries[$i]}: FAILED (exit $entry_status, see above)" >&2
  fi
done
exit "$status"
