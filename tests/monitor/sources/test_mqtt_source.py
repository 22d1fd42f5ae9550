"""MqttSource settings and connection options (the broker tests are in tests/integration)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import structlog.testing
from pydantic import ValidationError

from support_monitor.monitor.cluster.durable import MQTT_QUIET, Durability
from support_monitor.monitor.cluster.settings import StateSettings
from support_monitor.monitor.deadletter import DeadLetter
from support_monitor.monitor.sources.deadletter_sinks import MqttDeadLetters
from support_monitor.monitor.sources.mqtt import MqttSource, connect_options, subscription_filters
from support_monitor.monitor.sources.settings import MqttSettings, topic_matches
from support_monitor.monitor.stats import DaemonStats
from tests.support import settings


def test_shared_subscription_filters():
    settings = MqttSettings(topics=("support/events/#", "cc/+/events"), shared_group="monitors")
    assert subscription_filters(settings) == [
        "$share/monitors/support/events/#",
        "$share/monitors/cc/+/events",
    ]
    assert subscription_filters(MqttSettings()) == ["support/events/#"]


def test_persistent_session_by_default():
    settings = MqttSettings()
    assert settings.clean_session is False
    assert settings.client_id == "support-monitor"


def test_credentials_stay_secret_and_reach_the_client():
    settings = MqttSettings(username="monitor", password="s3cret")
    assert "s3cret" not in repr(settings)
    options = connect_options(settings, None)
    assert options["password"] == "s3cret"
    assert options["username"] == "monitor"
    assert "tls_context" not in options


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topics": ("$share/g/a",)}, "set shared_group instead"),
        ({"shared_group": "a/b"}, "pattern"),
        ({"cert_file": "/c.pem"}, "go together"),
        ({"ca_file": "/ca.pem"}, "tls is false"),
        ({"dead_letter_topic": "dead/#"}, "not a filter"),
        ({"topics": ()}, "at least one topic"),
    ],
)
def test_settings_refuse_inconsistent_values(fields, message):
    with pytest.raises(ValidationError, match=message):
        MqttSettings(**fields)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("support/events/#", "support/events/voice", True),
        ("support/events/#", "support/events", True),  # '#' includes the parent level
        ("support/events/#", "support/eventsx", False),
        ("support/+/dead", "support/events/dead", True),
        ("support/+/dead", "support/events/x/dead", False),
        ("support/+", "support/", True),  # '+' matches an empty level
        ("+/+", "a/b", True),
        ("+", "a/b", False),
        ("#", "support/dead-letters", True),
        ("#", "$SYS/broker/load", False),  # wildcards at the start never match '$' topics
        ("+/broker/load", "$SYS/broker/load", False),
        ("$SYS/#", "$SYS/broker/load", True),
        ("$share/g/support/#", "support/dead", True),
        ("$share/g/other/#", "support/dead", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
    ],
)
def test_topic_filter_matching(topic_filter, topic, matches):
    assert topic_matches(topic_filter, topic) is matches


@pytest.mark.parametrize(
    ("fields", "subscription"),
    [
        ({"topics": ("support/#",), "dead_letter_topic": "support/dead"}, "support/#"),
        ({"topics": ("#",), "dead_letter_topic": "dlq"}, "#"),
        ({"topics": ("a/x", "s/+/e"), "dead_letter_topic": "s/dl/e"}, "s/+/e"),
        (
            {"topics": ("support/#",), "shared_group": "g", "dead_letter_topic": "support/d"},
            "$share/g/support/#",
        ),
    ],
)
def test_dead_letter_topic_under_the_subscription_is_refused(fields, subscription):
    with pytest.raises(ValidationError) as error:
        MqttSettings(**fields)
    message = str(error.value)
    assert f"matches the subscription {subscription!r}" in message
    assert "dead-lettered again" in message


def test_dead_letter_topic_outside_the_subscription_is_accepted():
    settings = MqttSettings(topics=("support/events/#",), dead_letter_topic="support/dead-letters")
    assert settings.dead_letter_topic == "support/dead-letters"


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("$SYS/dead-letters", "belong to the broker"),  # mosquitto PUBACKs and drops them
        ("$dlq/support", "belong to the broker"),
        ("dead/a\nb", "control characters"),  # mosquitto drops the connection
        ("dead/\x85", "control characters"),
        ("dead/\x7f", "control characters"),
    ],
)
def test_a_dead_letter_topic_the_broker_would_drop_is_refused(topic, message):
    with pytest.raises(ValidationError, match=message):
        MqttSettings(topics=("support/#",), dead_letter_topic=topic)


def test_check_config_refuses_a_looping_dead_letter_topic(tmp_path):
    config = tmp_path / "loop.yaml"
    config.write_text(
        "sources:\n  mqtt:\n    topics: ['support/#']\n    dead_letter_topic: support/dead\n",
        encoding="utf-8",
    )
    exe = Path(sys.executable).parent / "support-monitor"
    result = subprocess.run(
        [str(exe), "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "sources.mqtt: dead_letter_topic 'support/dead' matches the subscription" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


async def test_the_clock_waits_for_held_messages_only_so_long():
    """No broker listens: the source never connects, and the clock's wait for the session's held
    messages ends at ``catch_up_seconds``; once connected and quiet for half a second, at once."""
    source = MqttSource(MqttSettings(port=1, catch_up_seconds=0.3), DaemonStats())
    durable = Durability(StateSettings(), settings())
    durable.attach([source])
    assert durable.mqtt == [source]
    start = time.perf_counter()
    await durable.wait_caught_up()
    assert 0.3 <= time.perf_counter() - start < 5
    assert not source.backlog_in(MQTT_QUIET)
    source.connected_once, source.last_message = True, time.monotonic() - MQTT_QUIET
    assert not source.backlog_in(MQTT_QUIET)  # connected once, but not now
    source.receiving = True
    assert source.backlog_in(MQTT_QUIET)
    source.last_message = time.monotonic()
    assert not source.backlog_in(MQTT_QUIET)


def _letters(max_bytes: int) -> MqttDeadLetters:
    return MqttDeadLetters(
        "dlq",
        DaemonStats(),
        name="mqtt:dlq",
        source="mqtt",
        client_id="c",
        max_bytes=max_bytes,
        reconnect_max_seconds=1,
        close_timeout=1,
    )


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("€".encode() * 10_000, True),  # 3 bytes a character: a cut must not split one
        (b"\x01" * 10_000, True),  # each byte 6 in JSON (\u0001)
        (b"\xff\xfe" * 10_000, False),  # not UTF-8: base64
    ],
)
def test_an_mqtt_letter_is_cut_to_its_limit(raw: bytes, text: bool) -> None:
    letter = DeadLetter(raw, "too_large", "big", "mqtt", "t#1")
    payload = _letters(2_000).payload(letter)
    assert len(payload) <= 2_000
    record = json.loads(payload)
    assert record["raw_truncated"] == len(raw)
    if text:
        assert "raw_base64" not in record
        kept = record["raw"].encode()
    else:
        kept = base64.b64decode(record["raw_base64"])
    assert kept == raw[: len(kept)]
    assert len(kept) > 2_000 // 8  # not cut further than it had to be


def test_an_mqtt_letter_within_its_limit_is_whole() -> None:
    letter = DeadLetter(b'{"bad": json}', "invalid_json", "x", "mqtt", "t#1")
    record = json.loads(_letters(2_000).payload(letter))
    assert record["raw"] == '{"bad": json}'
    assert "raw_truncated" not in record


def test_a_dead_letter_topic_longer_than_mqtt_allows_is_refused() -> None:
    with pytest.raises(ValidationError, match="65,535 bytes"):
        MqttSettings(topics=("support/#",), dead_letter_topic="d/" + "é" * 40_000)


async def test_a_refused_login_is_logged_with_the_brokers_reason() -> None:
    """A broker that answers CONNECT with CONNACK "not authorised": the log line said only
    ``MqttConnectError()`` (the audit of 2026-12-01), so bad credentials looked like any other
    refusal."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the CONNECT packet
        writer.write(bytes([0x20, 0x02, 0x00, 0x05]))  # CONNACK, return code 5: not authorised
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = MqttSource(MqttSettings(port=port, connect_timeout=5), DaemonStats())
    with structlog.testing.capture_logs() as logs:
        async with server, source:
            events = source.events()
            task = asyncio.ensure_future(anext(events))
            for _ in range(200):
                if any(e["event"] == "mqtt_connect_failed" for e in logs):
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    failed = next(e for e in logs if e["event"] == "mqtt_connect_failed")
    assert "authori" in failed["error"].lower(), failed
