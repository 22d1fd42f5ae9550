"""Smoke tests of the local servers started by deploy/local/services.sh, through the fixtures of
tests/conftest_services.py. Skipped when the servers are down (failed on CI).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from confluent_kafka import Consumer, TopicPartition

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def post_json(url: str, body: object) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


# --- Kafka -----------------------------------------------------------------------------------


@pytest.mark.kafka
def test_kafka_console_produce_roundtrip(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    kafka_console_produce: Callable[..., None],
    kafka_console_consume: Callable[..., list[tuple[str | None, str]]],
) -> None:
    topic = make_kafka_topic(partitions=3)
    events = [json.dumps({"seq": i, "type": "contact.queued"}) for i in range(20)]
    kafka_console_produce(topic, events[:10], key="voice:billing")
    kafka_console_produce(topic, events[10:])

    # Kafka's console consumer sees them all, keyed ones with their key
    records = kafka_console_consume(topic, max_messages=20)
    assert sorted(value for _, value in records) == sorted(events)
    assert sum(1 for key, _ in records if key == "voice:billing") == 10

    # an independent client (librdkafka) reads the same;
    # the keyed ones share one partition, in order
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"smoke-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got: list[tuple[int, bytes | None, bytes]] = []
        for _ in range(100):
            if len(got) == 20:
                break
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            partition, value = message.partition(), message.value()
            assert partition is not None
            assert value is not None
            got.append((partition, message.key(), value))
    finally:
        consumer.close()
    assert len(got) == 20
    keyed = [(p, v) for p, k, v in got if k == b"voice:billing"]
    assert len({p for p, _ in keyed}) == 1
    assert [json.loads(v)["seq"] for _, v in keyed] == list(range(10))


# --- MQTT ------------------------------------------------------------------------------------


@pytest.mark.mqtt
async def test_mqtt_roundtrip(mqtt_address: tuple[str, int]) -> None:
    host, port = mqtt_address
    topic = f"test/{uuid.uuid4().hex}/events"
    async with aiomqtt.Client(host, port, identifier=f"sub-{uuid.uuid4().hex[:8]}") as sub:
        await sub.subscribe(topic, qos=1)
        async with aiomqtt.Client(host, port) as pub:
            await pub.publish(topic, b'{"type": "contact.queued"}', qos=1)
        async with asyncio.timeout(10):
            async for message in sub.messages:
                assert message.payload == b'{"type": "contact.queued"}'
                break


@pytest.mark.mqtt
async def test_mqtt_persistent_session_keeps_qos1_while_away(mqtt_address: tuple[str, int]) -> None:
    """The broker config keeps QoS 1 messages for a client with a persistent session while it is
    disconnected (what the daemon relies on across a restart)."""
    host, port = mqtt_address
    topic = f"test/{uuid.uuid4().hex}/events"
    client_id = f"persist-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(host, port, identifier=client_id, clean_session=False) as sub:
        await sub.subscribe(topic, qos=1)
    # subscriber away: publish
    async with aiomqtt.Client(host, port) as pub:
        for i in range(5):
            await pub.publish(topic, f"away-{i}".encode(), qos=1)
    received: list[bytes] = []
    async with aiomqtt.Client(host, port, identifier=client_id, clean_session=False) as sub:
        async with asyncio.timeout(10):
            async for message in sub.messages:
                assert isinstance(message.payload, bytes)
                received.append(message.payload)
                if len(received) == 5:
                    break
    # clean up the stored session
    async with aiomqtt.Client(host, port, identifier=client_id, clean_session=True):
        pass
    assert received == [f"away-{i}".encode() for i in range(5)]


# --- Prometheus / Alertmanager ---------------------------------------------------------------


@pytest.mark.prometheus
def test_prometheus_loaded_rules(prometheus_url: str) -> None:
    rules = get_json(f"{prometheus_url}/api/v1/rules")
    names = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
    assert {"SupportMonitorDown", "channel:support_service_level:ratio_5m"} <= names
    # target discovery and the notifier's alertmanager list fill in shortly after /-/ready
    deadline = time.monotonic() + 15
    while True:
        targets = get_json(f"{prometheus_url}/api/v1/targets")["data"]["activeTargets"]
        jobs = {target["labels"]["job"]: target["scrapeUrl"] for target in targets}
        managers = get_json(f"{prometheus_url}/api/v1/alertmanagers")["data"]
        if ("support-monitor" in jobs and managers["activeAlertmanagers"]) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.25)
    assert jobs["support-monitor"].startswith("http://127.0.0.1:")
    assert any("127.0.0.1" in m["url"] for m in managers["activeAlertmanagers"])


@pytest.mark.alertmanager
def test_alertmanager_status_and_alert(alertmanager_url: str) -> None:
    status = get_json(f"{alertmanager_url}/api/v2/status")
    assert status["cluster"]["status"] == "disabled"
    assert "slack-critical" in status["config"]["original"]
    marker = uuid.uuid4().hex
    alert = {
        "labels": {"alertname": "DeploySmokeTest", "severity": "info", "marker": marker},
        "annotations": {"summary": "smoke test, routed to the null receiver"},
    }
    assert post_json(f"{alertmanager_url}/api/v2/alerts", [alert]) == 200
    alerts = get_json(f"{alertmanager_url}/api/v2/alerts?filter=marker%3D%22{marker}%22")
    assert [a["labels"]["alertname"] for a in alerts] == ["DeploySmokeTest"]
    assert [r["name"] for r in alerts[0]["receivers"]] == ["null"]
