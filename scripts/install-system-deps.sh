#!/usr/bin/env bash
# Installs the Debian packages the tests need (chromium for the browser tests,
# kubectl for the simulator smoke test) when they are missing. Idempotent.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
