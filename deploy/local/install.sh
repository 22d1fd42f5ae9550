#!/usr/bin/env bash
# Install the servers the integration tests and local development use, without Docker:
#   - Debian packages: mosquitto, mosquitto-clients, prometheus (+ promtool),
#     prometheus-alertmanager (+ amtool), chromium (the console's browser test drives it headless)
#   - Apache Kafka (KRaft) jars from Maven Central into the cache dir (deploy/kafka/pom.xml)
#
# Usage: deploy/local/install.sh
#   env SUPPORT_MONITOR_CACHE  cache dir (default: $HOME/.cache/support-monitor)
#
# Idempotent: a second run is a fast no-op. The Debian packages' own services are never left
# running (we start our own instances on our own ports with deploy/local/*.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/common.sh
source "${HERE}/common.sh"

log() { printf '[install] %s\n' "$*" >&2; }

DEBIAN_SERVICES=(mosquitto prometheus prometheus-alertmanager)

install_debian_packages() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 \
    || missing+=(prometheus-alertmanager)
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if ((${#missing[@]} == 0)); then
    log "Debian packages present"
    return
  fi
  log "apt-get install ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  # Keep the packages' services from starting on their default ports during the install: a
  # policy-rc.d that says "101: action forbidden" is Debian's documented switch. Only ours is removed.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  local rc=0
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"; then
    log "install failed; refreshing the package lists and retrying once"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "${missing[@]}" || rc=$?
  fi
  ((own_policy)) && "${sudo[@]}" rm -f "$policy"
  ((rc == 0)) || exit "$rc"
  stop_debian_services
}

# On a host with systemd, make sure the Debian units are stopped and disabled so they don't hold
# 1883 / 9090 / 9093 (our instances use other ports anyway, but nobody wants two Prometheus).
stop_debian_services() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    for unit in "${DEBIAN_SERVICES[@]}"; do
      if systemctl is-active --quiet "$unit" 2>/dev/null || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
        log "stopping and disabling the Debian unit ${unit}"
        "${sudo[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
      fi
    done
  fi
}

check_maven_central() {
  local url="${MAVEN_CENTRAL_URL:-https://repo.maven.apache.org/maven2/}" err
  if ! err="$(curl -sSf --max-time 20 -o /dev/null "${url}org/apache/kafka/kafka_2.13/maven-metadata.xml" 2>&1)"; then
    log "ERROR: Maven Central is not reachable at ${url}"
    log "curl said: ${err}"
    exit 1
  fi
}

install_kafka() {
  local libs="${KAFKA_LIBS}" stamp
  stamp="${libs}/.installed-$(sha256sum "${REPO_ROOT}/deploy/kafka/pom.xml" | cut -c1-16)"
  if [[ -f $stamp ]]; then
    log "Kafka ${KAFKA_VERSION} jars present in ${libs}"
    return
  fi
  check_maven_central
  log "fetching Kafka ${KAFKA_VERSION} jars from Maven Central into ${libs}"
  local tmp="${libs}.tmp.$$" out
  rm -rf "$tmp"
  mkdir -p "$(dirname "$libs")"
  if ! out="$(mvn -B -q -f "${REPO_ROOT}/deploy/kafka/pom.xml" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1)"; then
    log "ERROR: mvn dependency:copy-dependencies failed:"
    printf '%s\n' "$out" >&2
    rm -rf "$tmp"
    exit 1
  fi
  for cls in kafka/Kafka.class kafka/tools/StorageTool.class \
    org/apache/kafka/tools/TopicCommand.class kafka/tools/ConsoleProducer.class \
    org/apache/kafka/tools/consumer/ConsoleConsumer.class; do
    if ! kafka_class_present "$tmp" "$cls"; then
      log "ERROR: ${cls} not found in the fetched jars (${tmp})"
      exit 1
    fi
  done
  rm -rf "$libs"
  mv "$tmp" "$libs"
  touch "$stamp"
  log "Kafka jars installed ($(find "$libs" -name '*.jar' | wc -l) jars)"
}

kafka_class_present() {
  local dir=$1 cls=$2 jar
  for jar in "$dir"/*.jar; do
    if unzip -l "$jar" "$cls" >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}

main() {
  install_debian_packages
  stop_debian_services
  install_kafka
  log "ok (cache: ${CACHE_DIR})"
}

main "$@"
