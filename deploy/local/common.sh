# shellcheck shell=bash
# Shared settings and helpers for deploy/local/*.sh. Sourced, not run.
#
#   SUPPORT_MONITOR_CACHE  downloads that survive between runs (default $HOME/.cache/support-monitor)
#   SUPPORT_MONITOR_RUN    data dirs, pid files, logs, generated configs (default /tmp/support-monitor-run)
#   KAFKA_PORT (19092) KAFKA_CONTROLLER_PORT (19094) MQTT_PORT (11883) PROM_PORT (19090)
#   AM_PORT (19093) MONITOR_TARGET (127.0.0.1:9108) START_TIMEOUT (seconds, default 90)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${SUPPORT_MONITOR_CACHE:-${HOME:-/root}/.cache/support-monitor}"
RUN_DIR="${SUPPORT_MONITOR_RUN:-/tmp/support-monitor-run}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "${REPO_ROOT}/deploy/kafka/pom.xml")"
KAFKA_LIBS="${CACHE_DIR}/kafka-${KAFKA_VERSION}-libs"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19094}"
MQTT_PORT="${MQTT_PORT:-11883}"
PROM_PORT="${PROM_PORT:-19090}"
AM_PORT="${AM_PORT:-19093}"
MONITOR_TARGET="${MONITOR_TARGET:-127.0.0.1:9108}"
START_TIMEOUT="${START_TIMEOUT:-90}"
export REPO_ROOT CACHE_DIR RUN_DIR KAFKA_VERSION KAFKA_LIBS

# port_open PORT -> 0 when something accepts TCP connections on 127.0.0.1:PORT
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_alive PIDFILE PATTERN -> 0 when the pid in PIDFILE runs and its command line contains PATTERN
# (guards against a stale pid file whose number was reused by another process).
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [[ -f $pidfile ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# start_bg NAME PIDFILE LOGFILE CMD... : run CMD detached (own session), write its pid.
start_bg() {
  local name=$1 pidfile=$2 logfile=$3
  shift 3
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  printf '\n=== %s start %s ===\n' "$name" "$(date -Is)" >>"$logfile"
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# stop_pid NAME PIDFILE PATTERN : SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    echo "${name}: not running"
    return 0
  fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    [[ -d /proc/$pid ]] || break
    # a zombie (state Z) has exited; it only waits for its parent to reap it
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.1
  done
  if [[ -d /proc/$pid ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
    echo "${name}: did not stop after 30 s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  echo "${name}: stopped (pid ${pid})"
}

# proc_running PID -> 0 while PID exists and is not a zombie (whatever its command line: a
# process just started by start_bg may not have exec'd its program yet).
proc_running() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] && [[ -d /proc/$pid ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

# wait_until NAME PIDFILE PATTERN LOGFILE TIMEOUT CHECK_CMD... : poll CHECK_CMD every 0.25 s.
# Fails early (printing the log tail) when the process started by start_bg dies. PATTERN is not
# checked here: between fork and exec the child's command line is still the script's.
wait_until() {
  local name=$1 pidfile=$2 pattern=$3 logfile=$4 timeout=$5
  shift 5
  local deadline=$((SECONDS + timeout)) pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if ! proc_running "$pid"; then
      echo "${name}: process exited during start-up; last lines of ${logfile}:" >&2
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.25
  done
  echo "${name}: not ready after ${timeout} s; last lines of ${logfile}:" >&2
  tail -n 40 "$logfile" >&2 || true
  return 1
}

# http_ok URL -> 0 on a 2xx answer
http_ok() {
  curl -sf --max-time 2 -o /dev/null "$1"
}

# port_free_or_die NAME PORT : refuse to start when someone else holds the port
port_free_or_die() {
  if port_open "$2"; then
    echo "$1: port 127.0.0.1:$2 is already in use by another process (not ours); set another port" >&2
    exit 1
  fi
}
