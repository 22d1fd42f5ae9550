"""The daemon on its simulator plus a Kafka source, scraped by the real Prometheus through the
repository's scrape config: every PromQL expression of every dashboard panel and every rule
must parse and return data, and every rule group must evaluate without error."""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support_monitor.dashboards.build import annotation_queries, build_all, panel_queries
from tests.conftest_services import create_kafka_topic, unique_topic_name
from tests.processes import start_daemon

ROOT = Path(__file__).resolve().parents[2]
TARGET = ("127.0.0.1", 9108)  # deploy/local/prometheus.sh scrapes this (MONITOR_TARGET)
_COMPARISON = re.compile(r"^(?P<left>.*?)\s*(==|!=|>=|<=|>|<)\s*-?[0-9.e+]+\s*$", re.DOTALL)


def _rule_queries() -> list[str]:
    queries = []
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                expr = rule["expr"].strip()
                if "alert" in rule:
                    # An alert's condition filters to nothing while all is well: what it
                    # compares must have data.
                    match = _COMPARISON.match(expr)
                    expr = match.group("left") if match else expr
                queries.append(expr)
    return queries


def _query(prometheus_url: str, expr: str) -> dict[str, Any]:
    reply = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    return dict(reply.json())


def _port_free() -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(TARGET) != 0


@pytest.mark.prometheus
def test_every_dashboard_and_rule_query_returns_data(
    tmp_path: Path,
    prometheus_url: str,
    alertmanager_url: str,
    kafka_bootstrap: str,
) -> None:
    assert _port_free(), "127.0.0.1:9108 is taken: the local Prometheus scrapes the daemon there"
    topic = unique_topic_name("promql")
    create_kafka_topic(kafka_bootstrap, topic, partitions=2)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": {
                    "simulator": {"enabled": True, "speed": 1},
                    "kafka": {
                        "bootstrap_servers": kafka_bootstrap,
                        "topics": [topic],
                        "group_id": f"g-{topic}",
                    },
                },
                "detectors": {
                    "thresholds": [
                        {
                            "name": "always",
                            "metric": "support_queue_oldest_wait_seconds",
                            "op": ">=",
                            "value": 0,
                        },
                    ]
                },
                "alerts": {
                    "rules": [{"alert": "EndToEnd", "detector": "always", "severity": "info"}]
                },
                "notifiers": {
                    "alertmanager": {"urls": [alertmanager_url]},
                    # as deployed: an outbox on disk (its failure counter is exported)
                    "state_dir": str(tmp_path / "state"),
                },
                # as deployed: rejected events kept in a file (its failure counter is exported)
                "dead_letter": {"path": str(tmp_path / "dead-letters.jsonl")},
            }
        ),
        encoding="utf-8",
    )
    proc = start_daemon(config, f"{TARGET[0]}:{TARGET[1]}")
    try:
        ready = (
            'sum_over_time(up{job="support-monitor"}[1m]) >= 3 '
            'and on() count(support_alerts{alertstate="firing"}) > 0 '
            "and on() count(support_monitor_kafka_partition_lag) > 0"
        )
        deadline = time.monotonic() + 120
        while not _query(prometheus_url, ready)["data"]["result"]:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "Prometheus did not get 3 scrapes with data"
            time.sleep(2)
        models = build_all().values()
        queries = [q for model in models for q in panel_queries(model)]
        queries += _rule_queries()
        annotations = [q for model in models for q in annotation_queries(model)]
        # the health alerts (ALERTS{alertname=~"SupportMonitor.*"}) are quiet while all is well
        quiet = {q for q in annotations if q.startswith("ALERTS{")}
        failures = []
        for expr in [*queries, *annotations]:
            answer = _query(prometheus_url, expr)
            if answer.get("status") != "success":
                failures.append(f"{expr!r}: {answer.get('error')}")
            elif not answer["data"]["result"] and expr not in quiet:
                failures.append(f"{expr!r}: no data")
        assert not failures, "\n".join(failures)
        assert len(annotations) == 4
        assert len(quiet) == 1
        assert len(queries) >= 60
        groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        broken = [
            (r["name"], r["lastError"])
            for g in groups
            for r in g["rules"]
            if r.get("health") == "err"
        ]
        assert not broken
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
