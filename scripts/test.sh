#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# install the project, install and start the real servers on 127.0.0.1 (Kafka, Mosquitto,
# Prometheus, Alertmanager), then ruff (lint and format), mypy --strict (the packages, then the
# tests) and pytest. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install.sh            # .venv with the development extras, versions from requirements-dev.lock
deploy/local/services.sh up
trap 'deploy/local/services.sh down >/dev/null 2>&1 || true' EXIT

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy (strict)"
.venv/bin/mypy
echo "== mypy tests (strict; test functions and fixtures may be unannotated)"
.venv/bin/mypy tests
echo "== pytest"
# --durations: the slowest tests, so CI time stays visible (the limit is 90 minutes).
# HYPOTHESIS_PROFILE=ci: the property-based tests draw the same examples every run
# (tests/conftest.py); explore new ones with --hypothesis-seed=N.
SUPPORT_MONITOR_REQUIRE_SERVICES=1 HYPOTHESIS_PROFILE=ci \
  .venv/bin/pytest --durations=25 "$@"
