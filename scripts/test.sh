#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# install the project, install and start the real servers on 127.0.0.1 (Kafka, Mosquitto,
# Prometheus, Alertmanager), then ruff, mypy --strict and pytest. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install.sh
deploy/local/services.sh up
trap 'deploy/local/services.sh down >/dev/null 2>&1 || true' EXIT

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy (strict)"
.venv/bin/mypy
echo "== pytest"
SUPPORT_MONITOR_REQUIRE_SERVICES=1 .venv/bin/pytest "$@"
