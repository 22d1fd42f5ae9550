#!/usr/bin/env bash
# Start / stop every local server support-monitor's integration tests and developers use:
# Kafka (KRaft), Mosquitto, Prometheus, Alertmanager. No Docker needed.
#
# Usage: deploy/local/services.sh up|down|status
#   up:     runs install.sh (fast no-op when installed), then starts all four (idempotent)
#   down:   stops all four
#   status: one line per server; exit 0 only when all four run
# Ports (127.0.0.1 only): Kafka 19092 (controller 19094), MQTT 11883, Prometheus 19090,
# Alertmanager 19093; see deploy/local/common.sh for the env overrides.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/common.sh
source "${HERE}/common.sh"

SERVICES=(kafka mosquitto prometheus alertmanager)

case "${1:-}" in
  up)
    t0=$SECONDS
    "${HERE}/install.sh"
    for s in "${SERVICES[@]}"; do
      "${HERE}/${s}.sh" start
    done
    echo "all services up in $((SECONDS - t0)) s"
    echo "  kafka         127.0.0.1:${KAFKA_PORT}       log ${RUN_DIR}/kafka/kafka.log"
    echo "  mosquitto     127.0.0.1:${MQTT_PORT}       log ${RUN_DIR}/mosquitto/mosquitto.log"
    echo "  prometheus    http://127.0.0.1:${PROM_PORT} log ${RUN_DIR}/prometheus/prometheus.log"
    echo "  alertmanager  http://127.0.0.1:${AM_PORT} log ${RUN_DIR}/alertmanager/alertmanager.log"
    echo "stop with: deploy/local/services.sh down"
    ;;
  down)
    rc=0
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
      "${HERE}/${SERVICES[i]}.sh" stop || rc=1
    done
    echo "logs and data stay in ${RUN_DIR} (delete it for a clean slate)"
    exit "$rc"
    ;;
  status)
    rc=0
    for s in "${SERVICES[@]}"; do
      "${HERE}/${s}.sh" status || rc=3
    done
    exit "$rc"
    ;;
  *)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
