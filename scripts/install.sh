#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install support-monitor into it, editable, with the versions
# locked in requirements-dev.lock (used as constraints: it pins, it adds nothing).
#   scripts/install.sh             the development extras too (tests, ruff, mypy, dashboards SDK)
#   scripts/install.sh --runtime   only what `support-monitor run` needs (scripts/run.sh)
# Nothing is installed when .venv already holds an install of the same pyproject.toml and lock
# (a development install also serves --runtime); the stamp is .venv/support-monitor.stamp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
mode=dev
case "${1:-}" in
  "") ;;
  --runtime) mode=runtime ;;
  *) echo "usage: scripts/install.sh [--runtime]" >&2; exit 2 ;;
esac

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi

want="$(cat pyproject.toml requirements-dev.lock | sha256sum | cut -d' ' -f1)"
have="$(cat .venv/support-monitor.stamp 2>/dev/null || true)"
if [ "$have" = "$want dev" ] || { [ "$mode" = runtime ] && [ "$have" = "$want runtime" ]; }; then
  exit 0
fi

rm -f .venv/support-monitor.stamp
if [ "$mode" = dev ]; then
  .venv/bin/pip install -q -c requirements-dev.lock -e '.[dev]'
else
  .venv/bin/pip install -q -c requirements-dev.lock -e .
fi
echo "$want $mode" > .venv/support-monitor.stamp
