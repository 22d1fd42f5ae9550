#!/usr/bin/env bash
# Local Alertmanager (Debian's prometheus-alertmanager binary) with the repo's config, no Docker.
#
# Usage: deploy/local/alertmanager.sh start|stop|status|restart|render
#   listens on 127.0.0.1:${AM_PORT:-19093}, clustering off; config deploy/alertmanager/alertmanager.yml
#   with the Slack api_url_file pointed at ${SLACK_WEBHOOK_URL_FILE:-<run dir>/alertmanager/slack_webhook_url}
#   (a placeholder URL on 127.0.0.1 is written there if the file does not exist).
#   config, data, log: ${SUPPORT_MONITOR_RUN:-/tmp/support-monitor-run}/alertmanager/
#   `render` only writes the local copy of the config and prints its path.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/common.sh
source "${HERE}/common.sh"

ADIR="${RUN_DIR}/alertmanager"
PIDFILE="${ADIR}/alertmanager.pid"
LOGFILE="${ADIR}/alertmanager.log"
CONF="${ADIR}/alertmanager.yml"
PATTERN="--config.file=${CONF}"
URL="http://127.0.0.1:${AM_PORT}"
SLACK_FILE="${SLACK_WEBHOOK_URL_FILE:-${ADIR}/slack_webhook_url}"

render() {
  mkdir -p "${ADIR}/data"
  if [[ ! -f $SLACK_FILE ]]; then
    # nothing listens there: notifications fail fast and stay on this machine
    printf 'http://127.0.0.1:9/slack-placeholder\n' >"$SLACK_FILE"
  fi
  sed -e "s|/etc/alertmanager/secrets/slack_webhook_url|${SLACK_FILE}|g" \
    -e "s|^\(\s*-\s*\)templates/|\1${REPO_ROOT}/deploy/alertmanager/templates/|" \
    "${REPO_ROOT}/deploy/alertmanager/alertmanager.yml" >"${CONF}.tmp"
  mv "${CONF}.tmp" "$CONF"
}

cmd_start() {
  command -v prometheus-alertmanager >/dev/null \
    || { echo "alertmanager: not installed; run deploy/local/install.sh" >&2; exit 1; }
  if pid_alive "$PIDFILE" "$PATTERN"; then
    echo "alertmanager: already running (pid $(cat "$PIDFILE")) on ${URL}"
    return 0
  fi
  port_free_or_die alertmanager "$AM_PORT"
  render
  amtool check-config "$CONF" >/dev/null
  start_bg alertmanager "$PIDFILE" "$LOGFILE" prometheus-alertmanager \
    --config.file="$CONF" \
    --storage.path="${ADIR}/data" \
    --web.listen-address="127.0.0.1:${AM_PORT}" \
    --web.external-url="${URL}/" \
    --cluster.listen-address=
  wait_until alertmanager "$PIDFILE" "$PATTERN" "$LOGFILE" "$START_TIMEOUT" http_ok "${URL}/-/ready"
  echo "alertmanager: ready on ${URL} (pid $(cat "$PIDFILE"); slack url file ${SLACK_FILE}; log ${LOGFILE})"
}

cmd_status() {
  if pid_alive "$PIDFILE" "$PATTERN" && http_ok "${URL}/-/ready"; then
    echo "alertmanager: running (pid $(cat "$PIDFILE")) on ${URL}; log ${LOGFILE}"
    return 0
  fi
  echo "alertmanager: not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_pid alertmanager "$PIDFILE" "$PATTERN" ;;
  restart) stop_pid alertmanager "$PIDFILE" "$PATTERN" && cmd_start ;;
  status) cmd_status ;;
  render) render && echo "$CONF" ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
