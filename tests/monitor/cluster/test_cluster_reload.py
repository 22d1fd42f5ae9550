"""Config reload in cluster mode, against the real Kafka broker: a replica applies a new
threshold on SIGHUP to the partitions it serves, refuses a change of the state's shape (and
keeps running with the config it had), and a SIGHUP never ends it."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from support_monitor.monitor.catalogue import FAMILIES
from tests.monitor.cluster.replicas import Node, produce, wait_until
from tests.processes import free_port

pytestmark = pytest.mark.kafka


def _config(bootstrap: str, topic: str, answer_seconds: int, windows: list[str]) -> dict[str, Any]:
    return {
        "windows": windows,
        "channels": {
            "voice": {"answer_seconds": answer_seconds, "service_level_target": 0.8},
            "email": {"first_response_seconds": 3600},
        },
        "sources": {
            "simulator": {"enabled": False},
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [topic],
                "group_id": f"reload-{uuid.uuid4().hex[:8]}",
                "poll_timeout": 0.2,
            },
        },
        "exporter": {"listen": f"127.0.0.1:{free_port()}", "tick_seconds": 0.25},
        "logging": {"format": "json"},
        "cluster": {"enabled": True, "snapshot_interval": 0.5},
    }


def _answer_seconds(node: Node) -> float | None:
    try:
        metrics = node.metrics()
    except OSError:
        return None
    return metrics.get(("support_channel_answer_seconds", (("channel", "voice"),)))


def _logged(node: Node, event: str) -> list[dict[str, Any]]:
    lines = node.text().splitlines()
    return [json.loads(x) for x in lines if x.startswith("{") and f'"{event}"' in x]


def test_sighup_reloads_every_partition_and_refuses_a_shape_change(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    tmp_path: Path,
    nodes: list[Node],
) -> None:
    topic = make_kafka_topic(partitions=2, prefix="reload")
    config = tmp_path / "replica.yaml"
    data = _config(kafka_bootstrap, topic, 20, ["5m", "1h"])
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    node = Node(config, tmp_path, "replica")
    nodes.append(node)
    ts = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()
    event = {"event_id": "r1", "type": "contact.queued", "ts": ts, "channel": "voice"}
    produce(kafka_bootstrap, topic, [("voice", json.dumps({**event, "contact_id": "c1"}))])
    wait_until(lambda: _answer_seconds(node) == 20, 60, "voice exported with T = 20 s", node)
    # a replica exposes every catalogued family, the cluster's own included
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    exposed = {f.name for f in text_string_to_metric_families(text) if f.name.startswith("support")}
    assert sorted(exposed) == sorted(f.base for f in FAMILIES)

    data["channels"]["voice"]["answer_seconds"] = 30
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    node.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _answer_seconds(node) == 30, 30, "T = 30 s after the reload", node)
    assert _logged(node, "config_reloaded")

    data["windows"] = ["5m", "2h"]
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    node.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: bool(_logged(node, "config_reload_refused")), 30, "the refusal", node)
    # the file change and the SIGHUP may each make an attempt: every one is refused
    refusals = _logged(node, "config_reload_refused")
    assert {r["error"] for r in refusals} == {"windows changed: restart the daemon to apply it"}
    assert node.proc.poll() is None
    assert _answer_seconds(node) == 30
    windows = {
        dict(labels).get("window")
        for (name, labels), _ in node.metrics().items()
        if name == "support_service_level_ratio"
    }
    assert windows == {"5m", "1h"}
    assert node.stop() == 0
