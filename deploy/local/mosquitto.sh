#!/usr/bin/env bash
# Local Mosquitto MQTT broker for development and tests, no Docker.
#
# Usage: deploy/local/mosquitto.sh start|stop|status|restart
#   listener: 127.0.0.1:${MQTT_PORT:-11883}, anonymous, persistent sessions (QoS 1 kept while away)
#   config:   deploy/mosquitto/mosquitto-local.conf (rendered into the run dir)
#   data/log: ${SUPPORT_MONITOR_RUN:-/tmp/support-monitor-run}/mosquitto/
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/common.sh
source "${HERE}/common.sh"

MDIR="${RUN_DIR}/mosquitto"
PIDFILE="${MDIR}/mosquitto.pid"
LOGFILE="${MDIR}/mosquitto.log"
CONF="${MDIR}/mosquitto.conf"
PATTERN="-c ${CONF}"

mosquitto_bin() {
  command -v mosquitto 2>/dev/null || { [[ -x /usr/sbin/mosquitto ]] && echo /usr/sbin/mosquitto; } || {
    echo "mosquitto: binary not found; run deploy/local/install.sh first" >&2
    exit 1
  }
}

cmd_start() {
  local bin
  bin="$(mosquitto_bin)"
  if pid_alive "$PIDFILE" "$PATTERN"; then
    echo "mosquitto: already running (pid $(cat "$PIDFILE")) on 127.0.0.1:${MQTT_PORT}"
    return 0
  fi
  port_free_or_die mosquitto "$MQTT_PORT"
  mkdir -p "${MDIR}/data"
  sed -e "s|@MQTT_PORT@|${MQTT_PORT}|g" -e "s|@RUN_DIR@|${RUN_DIR}|g" -e "s|@USER@|$(id -un)|g" \
    "${REPO_ROOT}/deploy/mosquitto/mosquitto-local.conf" >"$CONF"
  start_bg mosquitto "$PIDFILE" "$LOGFILE" "$bin" -c "$CONF"
  wait_until mosquitto "$PIDFILE" "$PATTERN" "$LOGFILE" "$START_TIMEOUT" port_open "$MQTT_PORT"
  echo "mosquitto: ready on 127.0.0.1:${MQTT_PORT} (pid $(cat "$PIDFILE"); log ${LOGFILE})"
}

cmd_status() {
  if pid_alive "$PIDFILE" "$PATTERN" && port_open "$MQTT_PORT"; then
    echo "mosquitto: running (pid $(cat "$PIDFILE")) on 127.0.0.1:${MQTT_PORT}; log ${LOGFILE}"
    return 0
  fi
  echo "mosquitto: not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_pid mosquitto "$PIDFILE" "$PATTERN" ;;
  restart) stop_pid mosquitto "$PIDFILE" "$PATTERN" && cmd_start ;;
  status) cmd_status ;;
  *)
    sed -n '2,7p' "$0" >&2
    exit 2
    ;;
esac
