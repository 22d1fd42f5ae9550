# support-monitor daemon image. Built by docker-compose.yml (services support-monitor, simulator).
#   docker build -t support-monitor:0.1.0 .
# The config is mounted at /etc/support-monitor/config.yaml; metrics on :9108/metrics.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the wheel needs (.dockerignore keeps the context to these files as well).
WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboards ./dashboards
RUN pip install . \
    && rm -rf /tmp/src \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin support-monitor \
    && mkdir -p /etc/support-monitor

WORKDIR /
USER 10001:10001
EXPOSE 9108

CMD ["support-monitor", "run", "--config", "/etc/support-monitor/config.yaml", "--listen", "0.0.0.0:9108"]
