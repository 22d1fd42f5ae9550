"""KafkaSource commit rules with a scripted stand-in for aiokafka's consumer (no broker needed)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from pydantic import ValidationError

from support_monitor.monitor.cluster import durable as durable_module
from support_monitor.monitor.cluster.durable import Durability
from support_monitor.monitor.cluster.settings import StateSettings
from support_monitor.monitor.deadletter import Backoff, DeadLetter, letter_record
from support_monitor.monitor.sources import kafka as kafka_module
from support_monitor.monitor.sources.deadletter_sinks import letter_headers
from support_monitor.monitor.sources.kafka import KafkaSource, client_options
from support_monitor.monitor.sources.settings import KafkaSettings
from support_monitor.monitor.stats import DaemonStats
from tests.monitor.sources.fake_kafka import TP0, TP1, FakeConsumer, Record, commits
from tests.support import settings


class FakeSink:
    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.letters: list[DeadLetter] = []

    async def write(self, letter: DeadLetter) -> None:
        self.letters.append(letter)
        self.log.append("write")

    async def flush(self) -> None:
        self.log.append("flush")

    async def close(self) -> None:
        self.log.append("close-sink")


@pytest.fixture
def fake(monkeypatch):
    FakeConsumer.instances.clear()
    monkeypatch.setattr(kafka_module, "AIOKafkaConsumer", FakeConsumer)
    return FakeConsumer


async def _first_consumer(source: KafkaSource) -> tuple[Any, FakeConsumer]:
    events = source.events()
    task = asyncio.ensure_future(anext(events))
    while not FakeConsumer.instances:
        await asyncio.sleep(0)
    return (events, task), FakeConsumer.instances[0]


async def test_commits_only_what_the_loop_has_applied(fake):
    stats = DaemonStats()
    source = KafkaSource(KafkaSettings(topics=("events",), poll_timeout=0.01), stats)
    async with source:
        (events, first), consumer = await _first_consumer(source)
        consumer.batches = [
            {TP0: [Record(0, b"a"), Record(1, b"b")], TP1: [Record(5, b"c")]},
            {TP0: [Record(2, b"d"), Record(3, b"e")]},
        ]
        delivery = await first
        assert (delivery.raw, delivery.position) == (b"a", "events/0/0")
        assert stats.source_up["kafka"] is True
        assert (await anext(events)).position == "events/0/1"
        assert (await anext(events)).position == "events/1/5"
        assert commits(consumer) == []  # nothing commits before the loop asks past the batch
        assert (await anext(events)).position == "events/0/2"
        assert commits(consumer) == [{TP0: 2, TP1: 6}]
        assert stats.partition_lag == {("events", 0): 8, ("events", 1): 4}
        assert (await anext(events)).position == "events/0/3"
        # "events/0/3" is handed out but not applied yet: closing commits up to offset 3 only.
        await events.aclose()
    assert commits(consumer) == [{TP0: 2, TP1: 6}, {TP0: 3}]
    assert consumer.stopped
    assert stats.source_up["kafka"] is False
    assert consumer.options["enable_auto_commit"] is False


async def test_without_state_the_backlog_at_the_first_assignment_is_caught_up(fake):
    """No state dir: the clock waits (``caught_up``) until the records the partitions held at
    the first assignment are applied (TP0 ends at 4, TP1 at 6), not only fetched."""
    source = KafkaSource(KafkaSettings(topics=("events",), poll_timeout=0.01), DaemonStats())
    async with source:
        (events, first), consumer = await _first_consumer(source)
        consumer.ends = {TP0: 4, TP1: 6}
        await consumer.listener.on_partitions_assigned({TP0, TP1})
        assert not source.caught_up.is_set()
        consumer.batches = [
            {TP0: [Record(i, b"x") for i in range(4)]},
            {TP1: [Record(4, b"y"), Record(5, b"z")]},
            {TP1: [Record(6, b"later")]},
        ]
        assert (await first).position == "events/0/0"
        for expected in ("events/0/1", "events/0/2", "events/0/3", "events/1/4", "events/1/5"):
            assert (await anext(events)).position == expected
            assert not source.caught_up.is_set()
        assert (await anext(events)).position == "events/1/6"
        assert source.caught_up.is_set()
        await consumer.listener.on_partitions_assigned({TP0, TP1})  # a later one: no new wait
        assert source.caught_up.is_set()
        await events.aclose()


async def test_revocation_commits_applied_and_abandons_the_batch(fake):
    stats = DaemonStats()
    source = KafkaSource(KafkaSettings(topics=("events",), poll_timeout=0.01), stats)
    async with source:
        (events, first), consumer = await _first_consumer(source)
        consumer.batches = [
            {TP0: [Record(0, b"a"), Record(1, b"b"), Record(2, b"c")]},
            {TP0: [Record(1, b"b")]},  # refetched from the committed offset after the rebalance
        ]
        assert (await first).position == "events/0/0"
        assert (await anext(events)).position == "events/0/1"
        # A rebalance while "events/0/1" is being applied: commit what was applied (offset 1).
        await consumer.listener.on_partitions_revoked([TP0])
        assert commits(consumer) == [{TP0: 1}]
        # The rest of the batch ("events/0/2") is abandoned; the refetch comes next.
        assert (await anext(events)).position == "events/0/1"
        await events.aclose()
    assert commits(consumer) == [{TP0: 1}]


async def test_dead_letters_are_flushed_before_the_commit(fake):
    stats = DaemonStats()
    source = KafkaSource(
        KafkaSettings(topics=("events",), poll_timeout=0.01, dead_letter_topic="dlq"), stats
    )
    async with source:
        (events, first), consumer = await _first_consumer(source)
        sink = FakeSink(consumer.log)
        source.dead_letters = sink  # type: ignore[assignment]
        consumer.batches = [{TP0: [Record(0, b"{bad")]}, {TP0: [Record(1, b"x")]}]
        delivery = await first
        await sink.write(DeadLetter(delivery.raw, "invalid_json", "x", "kafka", delivery.position))
        await anext(events)
        await events.aclose()
    assert consumer.log[:4] == ["start", "write", "flush", ("commit", {TP0: 1})]


async def test_unreachable_broker_at_start_retries_without_raising(monkeypatch):
    from aiokafka.errors import KafkaConnectionError  # noqa: PLC0415

    attempts = []

    class Down(FakeConsumer):
        async def start(self) -> None:
            attempts.append(1)
            raise KafkaConnectionError("down")

    monkeypatch.setattr(kafka_module, "AIOKafkaConsumer", Down)
    stats = DaemonStats()
    source = KafkaSource(KafkaSettings(reconnect_max_seconds=0.05), stats)
    async with source:
        events = source.events()
        task = asyncio.ensure_future(anext(events))
        await asyncio.sleep(1.2)
        assert not task.done()
        assert len(attempts) >= 2
        assert stats.source_up["kafka"] is False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_backoff_is_capped_and_jittered():
    backoff = Backoff(cap=4.0, base=0.5)
    delays = [backoff.next_delay() for _ in range(12)]
    ceilings = [min(4.0, 0.5 * 2**i) for i in range(12)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_secrets_stay_secret_and_reach_the_client():
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="monitor",
        sasl_password="s3cret",
    )
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())
    options = client_options(settings, None)
    assert options["sasl_plain_password"] == "s3cret"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism is required"),
        ({"sasl_mechanism": "PLAIN"}, "security_protocol is not SASL"),
        # credentials nothing would send (alone from an environment override, they made a Kafka
        # source of a config without one, turning the simulator off)
        ({"sasl_password": "x"}, "sasl_password is set but security_protocol is not SASL_"),
        ({"sasl_username": "u"}, "sasl_username is set but security_protocol is not SASL_"),
        ({"topics": ("a",), "dead_letter_topic": "a"}, "must not be one of the consumed"),
        ({"ssl_certfile": "/x.pem"}, "go together"),
        ({"topics": ()}, "at least one topic"),
    ],
)
def test_settings_refuse_inconsistent_values(fields, message):
    with pytest.raises(ValidationError, match=message):
        KafkaSettings(**fields)


def test_dead_letter_headers():
    letter = DeadLetter(b"{", "invalid_json", "d" * 5000, "kafka", "events/3/42")
    headers = dict(letter_headers(letter))
    assert headers["reason"] == b"invalid_json"
    assert headers["position"] == b"events/3/42"
    assert headers["source"] == b"kafka"
    assert len(headers["detail"]) == 1000
    assert float(headers["rejected_at"]) > 0


def test_a_dead_letter_keeps_the_records_key():
    # the key of a rejected record (a tombstone's only content) was dropped before
    keyed = DeadLetter(b"", "invalid_json", "empty", "kafka", "events/0/7", b"ticket-\xff")
    record = letter_record(keyed)
    assert record["raw"] == ""
    assert base64.b64decode(str(record["key_base64"])) == b"ticket-\xff"
    assert "key_base64" not in letter_record(DeadLetter(b"{", "invalid_json", "d", "file", "f:1"))


def test_configured_sources_and_their_dead_letter_sinks():
    from support_monitor.monitor.deadletter import MemoryDeadLetters  # noqa: PLC0415
    from support_monitor.monitor.sources.build import configured_sources, dead_letter_sink  # noqa: PLC0415
    from support_monitor.monitor.sources.mqtt import MqttSource  # noqa: PLC0415
    from tests.support import settings  # noqa: PLC0415

    cfg = settings(sources={"kafka": {"dead_letter_topic": "dlq"}, "mqtt": {}})
    stats = DaemonStats()
    sources = configured_sources(cfg, stats)
    assert [type(s) for s in sources] == [KafkaSource, MqttSource]
    assert [s.name for s in sources] == ["kafka", "mqtt"]
    assert stats.source_up == {"kafka": False, "mqtt": False}  # not ready until connected
    default = MemoryDeadLetters()
    kafka, mqtt = sources
    assert dead_letter_sink(kafka, default) is kafka.dead_letters  # type: ignore[attr-defined]
    assert dead_letter_sink(mqtt, default) is default


async def test_without_state_an_unassigned_source_holds_the_clock_only_so_long(monkeypatch):
    """No state dir and no partition assigned (the broker is down): the clock's wait ends after
    ``UNASSIGNED_WAIT``; once partitions were assigned, it lasts until their backlog is in."""
    monkeypatch.setattr(durable_module, "UNASSIGNED_WAIT", 0.2)
    source = KafkaSource(KafkaSettings(topics=("events",)), DaemonStats())
    durable = Durability(StateSettings(), settings())
    durable.attach([source])
    assert durable.kafka == [source]
    start = time.perf_counter()
    await durable.wait_caught_up()
    assert 0.2 <= time.perf_counter() - start < 5
    source.assigned_once = True
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(durable.wait_caught_up(), 0.5)
    source.caught_up.set()
    await asyncio.wait_for(durable.wait_caught_up(), 1)
