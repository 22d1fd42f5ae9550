#!/usr/bin/env bash
# Run the daemon. With no config (or no source in it) it runs on the built-in simulator:
# metrics at http://127.0.0.1:9108/metrics within seconds. Args go to `support-monitor run`.
# Installs only what running needs, and only when .venv does not hold this version already.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install.sh --runtime
exec .venv/bin/support-monitor run "$@"
