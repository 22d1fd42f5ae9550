# support-monitor daemon image. Built by docker-compose.yml (services support-monitor, simulator).
#   docker build -t support-monitor:0.1.0 .
# The config is mounted at /etc/support-monitor/config.yaml; metrics on :9108/metrics; durable
# state (snapshots, alert state, the notifier outbox) belongs on a volume at /var/lib/support-monitor.
#
# The base image is pinned by exact tag, not by digest: pin it by digest where you build
# (docs/deploy.md, "Images and pinning") by appending @sha256:<digest> to the tag.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /tmp/src

# 1. The runtime dependencies alone, at the tested versions (requirements-dev.lock as
#    constraints): this layer is rebuilt only when pyproject.toml or the lock changes, not on
#    every code change. No extras: `dashboards build` is not needed to run the daemon.
COPY pyproject.toml requirements-dev.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c requirements-dev.lock -r requirements.txt

# 2. The project itself, without resolving dependencies again (.dockerignore keeps the build
#    context to these files); `pip check` fails the build if a dependency is missing.
COPY README.md LICENSE ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboards ./dashboards
# the one import package: symlinks to the four folders above (the wheel holds them as
# support_monitor/monitor, ...; nothing is installed under the bare folder names)
COPY support_monitor ./support_monitor
RUN pip install --no-deps . \
    && pip check \
    && rm -rf /tmp/src \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin support-monitor \
    && mkdir -p /etc/support-monitor /var/lib/support-monitor \
    && chown 10001:10001 /var/lib/support-monitor

WORKDIR /
USER 10001:10001
EXPOSE 9108

# Liveness: /healthz answers "ok" while the process serves HTTP (no credentials needed, even
# with basic auth). The image has no curl: Python's urllib, which exits non-zero on an error
# or a non-2xx answer. It assumes the CMD's plain-HTTP listener on 9108; with --listen on
# another port or TLS (exporter.web_config_file), override it (docker run --health-cmd).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=3)"]

# 0.0.0.0 inside the container: its network namespace is its own, and Prometheus (or the
# host's published port) reaches it through the container's interface, never its loopback.
# What is reachable from outside is decided where the port is published: docker-compose.yml
# publishes it on the host's 127.0.0.1 only (`docker run -p 127.0.0.1:9108:9108` likewise).
# To expose it further, set exporter.web_config_file (TLS, basic auth; docs/deploy.md).
CMD ["support-monitor", "run", "--config", "/etc/support-monitor/config.yaml", "--listen", "0.0.0.0:9108"]
