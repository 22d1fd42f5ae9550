"""Kafka and MQTT at once into one engine: the simulator publishes contacts to MQTT and tickets
to Kafka (``support-monitor simulate --kafka --mqtt``); the daemon applies every one of them and
its counters equal a replay of exactly the published events."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import httpx
import yaml

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.replay import replay
from support_monitor.monitor.sources.publish import publish_simulation
from tests.conftest_services import create_kafka_topic, unique_topic_name
from tests.processes import free_port, start_daemon
from tests.support import EVENT_ONLY, samples

COUNTERS = EVENT_ONLY


def _totals(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {k: v for k, v in samples(text).items() if k[0] in COUNTERS}


async def test_kafka_and_mqtt_feed_one_engine(
    tmp_path: Path, kafka_bootstrap: str, mqtt_address: tuple[str, int]
) -> None:
    topic = unique_topic_name("multi")
    create_kafka_topic(kafka_bootstrap, topic, partitions=2)
    prefix = f"test/{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                # the published simulation runs 900 s of event time ahead of the wall clock;
                # with a lateness, its ticket events would wait for the wall clock to pass
                # them (docs/events.md), up to 15 minutes: none, so every one applies at once
                "ingest": {"max_clock_skew": "1h", "allowed_lateness": 0},
                "sources": {
                    "kafka": {
                        "bootstrap_servers": kafka_bootstrap,
                        "topics": [topic],
                        "group_id": f"g-{topic}",
                    },
                    "mqtt": {
                        "host": mqtt_address[0],
                        "port": mqtt_address[1],
                        "topics": [f"{prefix}/#"],
                        "client_id": f"c-{topic}",
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    proc = start_daemon(config, f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "daemon never became ready"
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        settings = parse_settings({"sources": {"simulator": {"speed": 600, "seed": 11}}})
        published: list[bytes] = []
        sent = await publish_simulation(
            settings.channels,
            settings.sources.simulator,
            kafka=kafka_bootstrap,
            mqtt=mqtt_address,
            kafka_topic=topic,
            mqtt_prefix=prefix,
            duration=900,
            record=published,
        )
        assert sent["kafka"] > 20
        assert sent["mqtt"] > 100
        text = ""
        while time.monotonic() < deadline + 60:
            text = httpx.get(f"{url}/metrics", timeout=5).text
            applied = {
                k[1]: v for k, v in samples(text).items() if k[0] == "support_monitor_events_total"
            }
            by_source = {
                s: sum(v for lbl, v in applied.items() if ("source", s) in lbl)
                for s in ("kafka", "mqtt")
            }
            if by_source == {"kafka": sent["kafka"], "mqtt": sent["mqtt"]}:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"applied {by_source}, sent {dict(sent)}")
        rejected = [
            v
            for k, v in samples(text).items()
            if k[0] == "support_monitor_events_rejected_total" and v
        ]
        assert rejected == []
        events = tmp_path / "published.jsonl"
        # replay in event-time order: the two brokers deliver in their own order
        ordered = sorted(published, key=lambda raw: json.loads(raw)["ts"])
        events.write_bytes(b"\n".join(ordered) + b"\n")
        expected = _totals((await replay(events, settings)).decode())
        assert _totals(text) == expected
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
