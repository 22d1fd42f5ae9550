#!/usr/bin/env bash
# Local Prometheus (Debian's binary) with the repo's config and rules, no Docker.
#
# Usage: deploy/local/prometheus.sh start|stop|status|restart|render
#   listens on 127.0.0.1:${PROM_PORT:-19090}; scrapes ${MONITOR_TARGET:-127.0.0.1:9108} (job
#   support-monitor); sends alerts to 127.0.0.1:${AM_PORT:-19093}; rules from deploy/prometheus/rules.
#   config, data, log: ${SUPPORT_MONITOR_RUN:-/tmp/support-monitor-run}/prometheus/
#   `render` only writes the loopback copy of deploy/prometheus/prometheus.yml and prints its path.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/common.sh
source "${HERE}/common.sh"

PDIR="${RUN_DIR}/prometheus"
PIDFILE="${PDIR}/prometheus.pid"
LOGFILE="${PDIR}/prometheus.log"
CONF="${PDIR}/prometheus.yml"
PATTERN="--config.file=${CONF}"
URL="http://127.0.0.1:${PROM_PORT}"

# The repo's config names compose services; rewrite them to loopback and make the rule path absolute.
render() {
  mkdir -p "${PDIR}/data"
  sed -e "s|support-monitor:9108|${MONITOR_TARGET}|g" \
    -e "s|alertmanager:9093|127.0.0.1:${AM_PORT}|g" \
    -e "s|localhost:9090|127.0.0.1:${PROM_PORT}|g" \
    -e "s|^\(\s*-\s*\)rules/|\1${REPO_ROOT}/deploy/prometheus/rules/|" \
    "${REPO_ROOT}/deploy/prometheus/prometheus.yml" >"${CONF}.tmp"
  mv "${CONF}.tmp" "$CONF"
}

cmd_start() {
  command -v prometheus >/dev/null || { echo "prometheus: not installed; run deploy/local/install.sh" >&2; exit 1; }
  if pid_alive "$PIDFILE" "$PATTERN"; then
    echo "prometheus: already running (pid $(cat "$PIDFILE")) on ${URL}"
    return 0
  fi
  port_free_or_die prometheus "$PROM_PORT"
  render
  promtool check config "$CONF" >/dev/null
  start_bg prometheus "$PIDFILE" "$LOGFILE" prometheus \
    --config.file="$CONF" \
    --storage.tsdb.path="${PDIR}/data" \
    --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:${PROM_PORT}" \
    --web.external-url="${URL}/" \
    --web.enable-lifecycle \
    --web.enable-admin-api
  wait_until prometheus "$PIDFILE" "$PATTERN" "$LOGFILE" "$START_TIMEOUT" http_ok "${URL}/-/ready"
  echo "prometheus: ready on ${URL} (pid $(cat "$PIDFILE"); scraping ${MONITOR_TARGET}; log ${LOGFILE})"
}

cmd_status() {
  if pid_alive "$PIDFILE" "$PATTERN" && http_ok "${URL}/-/ready"; then
    echo "prometheus: running (pid $(cat "$PIDFILE")) on ${URL}; log ${LOGFILE}"
    return 0
  fi
  echo "prometheus: not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_pid prometheus "$PIDFILE" "$PATTERN" ;;
  restart) stop_pid prometheus "$PIDFILE" "$PATTERN" && cmd_start ;;
  status) cmd_status ;;
  render) render && echo "$CONF" ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
