"""Kafka source against a real broker (deploy/local/kafka.sh), fed by Kafka's own console producer.

Every test asserts exact counter values: the expected ones come from ``monitor.replay.replay`` of
the same events (a JSON Lines file through the same pipeline with event time as the clock), plus a
few numbers worked out by hand from the scenario. Only counters that do not depend on the clock
are compared (SLA breaches are decided by the clock tick, which replay drives and a live engine
without ticks does not).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from support_monitor.monitor.consume import consume
from support_monitor.monitor.deadletter import DeadLetter
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.sources.build import dead_letter_sink
from support_monitor.monitor.sources.kafka import KafkaSource
from support_monitor.monitor.stats import DaemonStats
from tests import conftest_services
from tests.integration.broker_scenario import (
    COMPARED,
    LiveEngine,
    Scenario,
    assert_counters_match,
    bad_lines,
    committed_offsets,
    end_offsets,
    kafka_settings,
    processed,
    replay_samples,
    wait_for,
)
from tests.processes import free_port
from tests.support import CONFIG, samples
from tests.support import settings as make_settings

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"


# --- scenario --------------------------------------------------------------------------------


# --- helpers ---------------------------------------------------------------------------------


def read_topic(
    bootstrap: str,
    topic: str,
    count: int,
    start: dict[int, int] | None = None,
    timeout: float = 60.0,
) -> list[Any]:
    """``count`` records of ``topic`` (from ``start`` offsets per partition, else the beginning),
    read with confluent-kafka: a client independent of the code under test."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition  # noqa: PLC0415

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 2 * 1024 * 1024,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=20)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign(
            [TopicPartition(topic, p, (start or {}).get(p, OFFSET_BEGINNING)) for p in partitions]
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            records.extend(message for message in batch if message.error() is None)
        return records
    finally:
        consumer.close()


# --- 1. exact counters, bad input, dead-letter topic -----------------------------------------


def _letters_topic(
    bootstrap: str, make_kafka_topic: Callable[..., str], limit: int
) -> tuple[str, str, KafkaSource, DaemonStats]:
    """An events topic, a dead-letter topic whose ``max.message.bytes`` is ``limit``, and a
    Kafka source (not entered) that writes its letters there, with its stats."""
    topic = make_kafka_topic(partitions=1, prefix="events")
    dlq = make_kafka_topic(partitions=1, prefix="dlq", config={"max.message.bytes": str(limit)})
    settings = kafka_settings(bootstrap, topic, dead_letter_topic=dlq)
    stats = DaemonStats()
    assert settings.sources.kafka is not None
    return topic, dlq, KafkaSource(settings.sources.kafka, stats), stats


async def test_a_dead_letter_topic_with_a_lower_size_limit_keeps_what_fits(
    kafka_bootstrap, make_kafka_topic
):
    """The dead-letter topic's ``max.message.bytes`` (400) is below ``dead_letter_max_bytes``:
    a letter it refuses as too large is halved until it fits (header ``raw_truncated``), one
    log line each; a 411-byte one was re-sent in a tight loop forever (never cut below 1,024
    bytes). A letter whose headers alone do not fit is a failure: counted and retried with
    backoff, never stored cut to nothing silently."""
    topic, dlq, source, stats = _letters_topic(kafka_bootstrap, make_kafka_topic, 400)
    bad = [b"a" * 411 + b"!", b"b" * 5000]
    async with source:
        sink = source.dead_letters
        assert sink is not None
        with capture_logs() as logs:
            for i, raw in enumerate(bad):
                await sink.write(DeadLetter(raw, "invalid_json", "bad", "kafka", f"{topic}/0/{i}"))
            await asyncio.wait_for(sink.flush(), 60)
        assert stats.dead_letter_failures[sink.name] == 0
        cut = [e for e in logs if e["event"] == "dead_letter_truncated"]
        assert [(e["position"], e["original_size"]) for e in cut] == [
            (f"{topic}/0/0", 412),
            (f"{topic}/0/1", 5000),
        ]
        # headers too big for the topic: a failure, retried (the flush never ends by itself)
        huge = DeadLetter(b"c", "invalid_json", "x" * 900, "kafka", f"{topic}/0/2")
        await sink.write(huge)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sink.flush(), 3)
        assert stats.dead_letter_failures[sink.name] >= 1
        assert sink.name in stats.dead_letter_sinks_failing
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, 2)
    assert len(records) == 2
    for record, raw in zip(records, bad, strict=True):
        headers = dict(record.headers())
        assert headers["raw_truncated"] == str(len(raw)).encode()
        assert 0 < len(record.value()) < len(raw)
        assert raw.startswith(record.value())  # the first bytes, unchanged


async def test_console_producer_exact_counters_and_dead_letters(
    kafka_bootstrap, make_kafka_topic, kafka_console_produce, tmp_path
):
    topic = make_kafka_topic(partitions=4, prefix="events")
    dlq = make_kafka_topic(partitions=1, prefix="dlq")
    scenario = Scenario("k1")
    scenario.contacts("voice", ("billing", "tech"), 200)
    scenario.contacts("chat", ("sales", "support"), 100)
    scenario.tickets(80)
    bad = bad_lines("k1", random_queues=10_000)
    # Bad input in the middle of the voice stream; good voice events continue after it.
    voice = scenario.by_channel["voice"]
    voice_stream = voice[:300] + bad + voice[300:]
    tail = Scenario("k1tail", base=scenario.base)
    tail.contacts("voice", ("billing", "tech"), 20, start=1000)
    voice_stream += tail.by_channel["voice"]
    kafka_console_produce(topic, voice_stream, key="voice")
    kafka_console_produce(topic, scenario.by_channel["chat"], key="chat")
    kafka_console_produce(topic, scenario.by_channel["email"], key="email")
    everything = voice_stream + scenario.by_channel["chat"] + scenario.by_channel["email"]

    settings = kafka_settings(kafka_bootstrap, topic, dead_letter_topic=dlq)
    live = LiveEngine(settings)
    assert settings.sources.kafka is not None
    source = KafkaSource(settings.sources.kafka, live.stats)
    async with source:
        sink = dead_letter_sink(source, live.fallback)
        assert sink is source.dead_letters
        task = asyncio.create_task(consume(source, live.pipeline, sink))
        try:
            await wait_for(lambda: processed(live.stats) >= len(everything), 180, "all records")
            await wait_for(
                lambda: (
                    all(v == 0 for v in live.stats.partition_lag.values())
                    and len(live.stats.partition_lag) >= 1
                ),
                30,
                "lag 0",
            )
            assert live.stats.source_up["kafka"] is True
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert not task.done() or task.cancelled()
    assert live.stats.source_up["kafka"] is False

    # Exact counters: equal to a replay of the same events, and to the numbers by hand.
    expected = await replay_samples(everything, settings, tmp_path)
    assert_counters_match(expected, live.engine, live.stats, "kafka")
    rejected = {reason: n for (_, reason), n in live.stats.rejected.items() if n}
    assert rejected == {
        "invalid_json": 1,
        "too_large": 1,
        "wrong_type": 1,
        "unknown_channel": 1,
        "unknown_queue": 10_000,
    }
    assert sum(live.stats.duplicates.values()) == 0
    voice_billing = {
        row.name: row.value
        for row in series(live.engine)
        if row.labels == (("channel", "voice"), ("queue", "billing"))
    }
    # voice: 220 contacts (i = 0..199 and 1000..1019), billing = even i -> 110
    assert voice_billing["support_contacts_queued_total"] == 110
    # abandoned: i % 5 == 0 and even -> i % 10 == 0: 20 + 2
    assert voice_billing["support_contacts_abandoned_total"] == 22
    # answered late: i % 5 == 1 and even -> i % 10 == 6: 20 + 2
    assert voice_billing["support_contacts_answered_total"] == 110 - 22
    assert voice_billing["support_contacts_answered_in_sla_total"] == 110 - 22 - 22
    email = {
        row.name: row.value
        for row in series(live.engine)
        if row.labels == (("channel", "email"), ("queue", "default"))
    }
    assert email["support_tickets_created_total"] == 80
    assert email["support_tickets_solved_total"] == 80

    # Series stay bounded: 10,000 random queue names created no queue.
    assert set(live.engine.channels["voice"].queues) == {"billing", "tech"}
    good_only = Engine(settings)
    good_pipeline = Pipeline(good_only, DaemonStats(), event_clock=True, log_burst=0)
    from support_monitor.monitor.pipeline import Delivery  # noqa: PLC0415

    for i, line in enumerate(scenario.lines() + tail.lines()):
        good_pipeline.process("file", Delivery(line.encode(), str(i)))
    assert len(list(series(live.engine))) == len(list(series(good_only)))

    # Every rejected record is in the dead-letter topic: original bytes, reason, position.
    total_rejected = sum(rejected.values())
    letters = await asyncio.to_thread(
        read_topic, kafka_bootstrap, dlq, total_rejected + 1, None, 60
    )
    assert len(letters) == total_rejected
    assert live.stats.dead_letters_written["kafka", f"kafka:{dlq}"] == total_rejected
    reasons: Counter[str] = Counter()
    bad_bytes = {line.encode() for line in bad}
    for message in letters:
        headers = {k: v.decode() for k, v in message.headers()}
        reasons[headers["reason"]] += 1
        assert headers["source"] == "kafka"
        t, p, o = headers["position"].split("/")
        assert t == topic
        assert int(p) in range(4)
        assert int(o) >= 0
        assert "raw_truncated" not in headers
        assert message.value() in bad_bytes
        assert headers["original_key"] == "voice"  # the bad lines went in with the voice key
        if headers["reason"] == "too_large":
            assert len(message.value()) > 999_850
    assert dict(reasons) == rejected

    # Offsets: everything consumed was committed (on close at the latest).
    ends = end_offsets(kafka_bootstrap, topic, 4)
    committed = committed_offsets(kafka_bootstrap, settings.sources.kafka.group_id, topic, 4)
    assert committed == ends
    assert sum(ends.values()) == len(everything)


# --- 2. broker stopped and restarted mid-stream ----------------------------------------------


@pytest.fixture
def private_kafka(
    kafka_bootstrap, tmp_path, monkeypatch, request
) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A broker of our own (kafka.sh with its own run dir and ports), so that stopping it does not
    disturb other tests using the shared one. Yields (bootstrap, kafka.sh runner). Indirect
    parameter ``"no-auto-create"``: a broker that creates no topic on first use."""
    port, controller = free_port(), free_port()
    env = {
        **os.environ,
        "SUPPORT_MONITOR_RUN": str(tmp_path / "run"),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "KAFKA_AUTO_CREATE_TOPICS": str(getattr(request, "param", "") != "no-auto-create").lower(),
    }

    def kafka_sh(command: str) -> None:
        subprocess.run(
            [str(KAFKA_SH), command], env=env, check=True, timeout=180, capture_output=True
        )

    kafka_sh("start")
    monkeypatch.setattr(conftest_services, "KAFKA_PORT", port)  # the console producer's target
    try:
        yield f"127.0.0.1:{port}", kafka_sh
    finally:
        kafka_sh("stop")


@pytest.mark.parametrize("private_kafka", ["no-auto-create"], indirect=True)
async def test_a_missing_topic_is_named_and_read_once_it_exists(private_kafka):
    bootstrap, _kafka_sh = private_kafka
    topic, later = f"events-{uuid.uuid4().hex[:8]}", f"later-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(conftest_services.create_kafka_topic, bootstrap, topic, 2)
    letters = f"dlq-{uuid.uuid4().hex[:8]}"
    settings = kafka_settings(bootstrap, topic, topics=[topic, later], dead_letter_topic=letters)
    assert settings.sources.kafka is not None
    live = LiveEngine(settings)
    source = KafkaSource(settings.sources.kafka, live.stats)
    scenario = Scenario("late-topic")
    scenario.contacts("voice", ("billing", "tech"), 10)

    def said(event: str = "kafka_topics_missing") -> list[MutableMapping[str, Any]]:
        return [line for line in logs if line["event"] == event]

    with capture_logs() as logs:
        async with source:
            task = asyncio.create_task(
                consume(source, live.pipeline, dead_letter_sink(source, live.fallback))
            )
            try:
                await wait_for(lambda: bool(said()), 20, "kafka_topics_missing")
                assert said()[0]["topics"] == [later]
                assert said()[0]["log_level"] == "warning"
                assert live.stats.source_up["kafka"] is False  # not ready while it waits
                await asyncio.to_thread(conftest_services.create_kafka_topic, bootstrap, later, 2)
                await asyncio.to_thread(
                    conftest_services.kafka_console_produce, later, scenario.lines(), key="voice"
                )
                await wait_for(lambda: processed(live.stats) == len(scenario.lines()), 90, "all")
                assert live.stats.source_up["kafka"] is True
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    assert len(said()) == 1
    # the dead-letter topic is missing too: said once the source connected
    (missing,) = said("dead_letter_topic_missing")
    assert (missing["topic"], missing["log_level"]) == (letters, "warning")


async def test_broker_restart_mid_stream(private_kafka, tmp_path):
    bootstrap, kafka_sh = private_kafka
    topic = f"events-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(conftest_services.create_kafka_topic, bootstrap, topic, 4)
    first, second = Scenario("r1"), Scenario("r2")
    first.contacts("voice", ("billing", "tech"), 150)
    first.tickets(40)
    second.contacts("voice", ("billing", "tech"), 150, start=500)
    second.contacts("chat", ("sales", "support"), 60)
    second.tickets(40, start=100)
    produce = conftest_services.kafka_console_produce

    def produce_all(scenario: Scenario) -> None:
        for channel, lines in scenario.by_channel.items():
            if lines:
                produce(topic, lines, key=channel)

    await asyncio.to_thread(produce_all, first)
    settings = kafka_settings(bootstrap, topic, dead_letter_topic=f"{topic}-dlq")
    live = LiveEngine(settings)
    assert settings.sources.kafka is not None
    source = KafkaSource(settings.sources.kafka, live.stats)
    up_history: list[bool] = []
    async with source:
        task = asyncio.create_task(
            consume(source, live.pipeline, dead_letter_sink(source, live.fallback))
        )
        try:
            await wait_for(lambda: processed(live.stats) == len(first.lines()), 90, "first half")
            assert live.stats.source_up["kafka"] is True
            await asyncio.to_thread(kafka_sh, "stop")
            await wait_for(lambda: live.stats.source_up["kafka"] is False, 30, "not ready")
            up_history.append(live.stats.source_up["kafka"])
            await asyncio.sleep(3)  # stays down and alive while the broker is away
            assert not task.done()
            assert live.stats.source_up["kafka"] is False
            await asyncio.to_thread(kafka_sh, "start")
            await wait_for(lambda: live.stats.source_up["kafka"] is True, 90, "ready again")
            up_history.append(True)
            await asyncio.to_thread(produce_all, second)
            total = len(first.lines()) + len(second.lines())
            await wait_for(lambda: processed(live.stats) >= total, 120, "second half")
            await asyncio.sleep(1)  # nothing beyond the produced records arrives
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert up_history == [False, True]
    everything = first.lines() + second.lines()
    # Redelivered records (not committed before the outage) are skipped by event_id.
    assert processed(live.stats) - sum(live.stats.duplicates.values()) == len(everything)
    expected = await replay_samples(everything, settings, tmp_path)
    assert_counters_match(expected, live.engine, live.stats, "kafka")
    assert sum(live.stats.rejected.values()) == 0
    ends = end_offsets(bootstrap, topic, 4)
    assert committed_offsets(bootstrap, settings.sources.kafka.group_id, topic, 4) == ends


# --- 3. the daemon killed with SIGKILL and restarted -----------------------------------------


def _scrape(port: int) -> dict[Any, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


def _daemon_total(metrics: dict[Any, float]) -> float:
    return sum(
        v
        for (name, _), v in metrics.items()
        if name
        in {
            "support_monitor_events_total",
            "support_monitor_events_rejected_total",
            "support_monitor_events_duplicate_total",
        }
    )


def _daemon_config(
    tmp_path: Path, bootstrap: str, topic: str, *, letters: str | None = None, **kafka: Any
) -> Path:
    """A config file for the daemon: the test channels, one Kafka source on ``topic`` with
    ``kafka`` settings, no simulator; ``letters``: the dead-letter file's name."""
    data = json.loads(json.dumps(CONFIG))
    options = {"bootstrap_servers": bootstrap, "topics": [topic], **kafka}
    data["sources"] = {"simulator": {"enabled": False}, "kafka": options}
    if letters is not None:
        data["dead_letter"] = {"path": str(tmp_path / letters)}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def _start_daemon(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "support-monitor"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(exe), "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=out,
            cwd=REPO,
        )


def _wait_metrics(port: int, proc: subprocess.Popen[bytes], timeout: float) -> dict[Any, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "daemon exited"
        try:
            return _scrape(port)
        except OSError:
            time.sleep(0.05)
    raise AssertionError("daemon /metrics never answered")


def test_daemon_sigkill_resumes_from_committed_offsets(
    kafka_bootstrap, make_kafka_topic, kafka_console_produce, tmp_path
):
    """What is asserted, precisely (the engine state lives in memory; checkpoints come later):

    1. The daemon is SIGKILLed after it applied some but not all records. The consumer group's
       committed offsets C at that moment are read from the broker: 0 < sum(C) < all records.
    2. The restarted daemon (same group) consumes exactly the records at offsets >= C: its
       events + rejected + duplicates counters sum to sum(end - C), nothing more (it did not
       start from the beginning) and nothing less (it did not skip to the end).
    3. No record at offsets >= C is applied twice by the restarted daemon: its duplicates counter
       is 0 and its counters equal a replay of exactly the records [C, end) read back with
       confluent-kafka (so no event counted twice and none missed in that range).
    4. At the end the committed offsets equal the end offsets.
    Records in [C, kill point) were applied by both processes: at-least-once, by design.
    """
    topic = make_kafka_topic(partitions=4, prefix="events")
    scenario = Scenario("s1")
    scenario.contacts("voice", ("billing", "tech"), 12_000)
    scenario.contacts("chat", ("sales", "support"), 8_000)
    scenario.tickets(6_000)
    for channel, lines in scenario.by_channel.items():
        kafka_console_produce(topic, lines, key=channel, timeout=300)
    total = len(scenario.lines())
    group = f"daemon-{uuid.uuid4().hex[:8]}"
    config = _daemon_config(
        tmp_path, kafka_bootstrap, topic, group_id=group, max_batch=100, letters="dead.jsonl"
    )
    port = free_port()
    log = tmp_path / "daemon.log"

    first = _start_daemon(config, port, log)
    try:
        _wait_metrics(port, first, 60)
        deadline = time.monotonic() + 120
        applied = 0.0
        while time.monotonic() < deadline:
            applied = _daemon_total(_scrape(port))
            if applied >= total * 0.2:
                break
            time.sleep(0.02)
        first.kill()  # SIGKILL: no commit on close, no clean leave
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert 0 < applied < total, f"kill was not mid-stream: {applied} of {total}"
    committed = committed_offsets(kafka_bootstrap, group, topic, 4)
    ends = end_offsets(kafka_bootstrap, topic, 4)
    assert 0 < sum(committed.values()) < total
    remaining = sum(ends[p] - committed[p] for p in ends)

    second = _start_daemon(config, port, log)
    try:
        _wait_metrics(port, second, 60)
        deadline = time.monotonic() + 180
        metrics: dict[Any, float] = {}
        while time.monotonic() < deadline:
            metrics = _scrape(port)
            if _daemon_total(metrics) >= remaining:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # let a late extra record show up if there were one
        metrics = _scrape(port)
        final_commit_deadline = time.monotonic() + 30
        while committed_offsets(kafka_bootstrap, group, topic, 4) != ends:
            assert time.monotonic() < final_commit_deadline, "offsets not committed to the end"
            time.sleep(0.2)
    finally:
        second.terminate()
        second.wait(30)
    assert second.returncode == 0, log.read_text()[-3000:]

    assert _daemon_total(metrics) == remaining
    duplicates = sum(
        v for (name, _), v in metrics.items() if name == "support_monitor_events_duplicate_total"
    )
    assert duplicates == 0
    # Expected: a replay of exactly the records [C, end), per partition in offset order.
    records = read_topic(kafka_bootstrap, topic, remaining, start=committed)
    assert len(records) == remaining
    by_partition: dict[int, list[Any]] = {}
    for message in records:
        by_partition.setdefault(message.partition(), []).append(message)
    lines = [
        m.value().decode()
        for p in sorted(by_partition)
        for m in sorted(by_partition[p], key=lambda m: m.offset())
    ]
    settings = make_settings()
    expected = asyncio.run(replay_samples(lines, settings, tmp_path))
    for (name, labels), value in metrics.items():
        if name in COMPARED:
            assert expected[name, labels] == value, (name, labels)
        elif name == "support_monitor_events_total":
            kind = dict(labels)["type"]
            assert expected[name, (("source", "file"), ("type", kind))] == value
        elif name == "support_monitor_events_rejected_total":
            reason = dict(labels)["reason"]
            assert expected[name, (("reason", reason), ("source", "file"))] == value


async def test_letters_cut_for_the_topic_among_others_are_no_failure(
    kafka_bootstrap, make_kafka_topic
):
    """Audit of 2026-12-05: with letters in flight behind one the topic refused as too large,
    re-sending it on the same idempotent producer (its sequence now has a gap) failed with
    `OutOfOrderSequenceNumber`: logged as `dead_letter_write_failed` and counted in
    `support_monitor_dead_letter_failures_total`, which pages through
    `SupportMonitorDeadLettersFailing`, though every letter was then stored. A refused letter
    now restarts the producer before it is re-sent."""
    topic, dlq, source, stats = _letters_topic(kafka_bootstrap, make_kafka_topic, 600)
    raws = [b"big" * 400 if i % 4 == 2 else b"small %d" % i for i in range(12)]
    async with source:
        sink = source.dead_letters
        assert sink is not None
        with capture_logs() as logs:
            for i, raw in enumerate(raws):
                await sink.write(DeadLetter(raw, "invalid_json", "bad", "kafka", f"{topic}/0/{i}"))
                if i == 0:  # stored: the producer's sequence has begun
                    await asyncio.wait_for(sink.flush(), 60)
            await asyncio.wait_for(sink.flush(), 60)
    events = [e["event"] for e in logs]
    assert "dead_letter_write_failed" not in events
    assert stats.dead_letter_failures[sink.name] == 0
    assert events.count("dead_letter_truncated") == 3
    records = await asyncio.to_thread(read_topic, kafka_bootstrap, dlq, len(raws))
    stored = {dict(r.headers())["position"].decode(): r.value() for r in records}
    assert len(records) == len(raws) == len(stored)
    for i, raw in enumerate(raws):
        value = stored[f"{topic}/0/{i}"]
        assert value == raw if len(raw) < 100 else 0 < len(value) < len(raw)


def test_letters_left_unstored_at_a_stop_are_not_reported_again_by_asyncio(
    kafka_bootstrap, make_kafka_topic, kafka_console_produce, tmp_path
):
    """Audit of 2026-12-05: with a dead-letter topic whose size limit not even a letter's
    headers fit (stored by nobody, a failure retried until the stop), each letter still in
    flight at the stop printed an error line `Future exception was never retrieved` with a
    traceback after `daemon_stopped`: 22 lines for one failure already said once."""
    topic = make_kafka_topic(partitions=1, prefix="events")
    dlq = make_kafka_topic(partitions=1, prefix="dlq", config={"max.message.bytes": "100"})
    kafka_console_produce(topic, [f"not json {i}" for i in range(8)], key="k")
    config = _daemon_config(
        tmp_path,
        kafka_bootstrap,
        topic,
        group_id=f"daemon-{uuid.uuid4().hex[:8]}",
        dead_letter_topic=dlq,
        reconnect_max_seconds=1,
        close_timeout=2,
    )
    port = free_port()
    log = tmp_path / "daemon.log"
    proc = _start_daemon(config, port, log)
    try:
        _wait_metrics(port, proc, 60)
        deadline = time.monotonic() + 60
        while "dead_letter_write_failed" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert '"daemon_stopped"' in text
    assert "never retrieved" not in text, text[-3000:]
    assert text.count('"dead_letter_write_failed"') == 1
