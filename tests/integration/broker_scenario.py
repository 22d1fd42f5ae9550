"""Broker test scenarios: contact-center traffic keyed by channel, bad lines, a live engine
fed from a source, and the replay they are compared with."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support_monitor.monitor.config import Settings
from support_monitor.monitor.deadletter import MemoryDeadLetters
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.replay import replay
from support_monitor.monitor.stats import DaemonStats
from tests.support import EVENT_ONLY, samples
from tests.support import settings as make_settings

COMPARED = EVENT_ONLY


def iso_z(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class Scenario:
    """Contact-center traffic a few minutes before now, one list of lines per channel (to be
    keyed by channel, so each channel's events stay in order in one partition)."""

    def __init__(self, tag: str, base: float | None = None) -> None:
        self.tag = tag
        self.base = (time.time() - 900) if base is None else base
        self.by_channel: dict[str, list[str]] = {"voice": [], "chat": [], "email": []}
        self._n = 0

    def event(self, kind: str, at: float, channel: str, **fields: Any) -> str:
        self._n += 1
        event = {
            "event_id": f"{self.tag}-{self._n}",
            "type": kind,
            "ts": iso_z(self.base + at),
            "channel": channel,
            **fields,
        }
        line = json.dumps(event, separators=(",", ":"))
        self.by_channel[channel].append(line)
        return line

    def contacts(self, channel: str, queues: tuple[str, ...], count: int, start: int = 0) -> None:
        """i % 5 == 0: abandoned after 3 s (short, in SLA); == 1: answered after 90 s (late);
        otherwise answered after 10 s (in SLA). Answered contacts end 60 s later."""
        for i in range(start, start + count):
            cid = f"{self.tag}-{channel}-c{i}"
            queue = queues[i % len(queues)]
            t = i * 0.01
            self.event("contact.queued", t, channel, queue=queue, contact_id=cid)
            if i % 5 == 0:
                self.event("contact.abandoned", t + 3, channel, queue=queue, contact_id=cid)
            else:
                wait = 90 if i % 5 == 1 else 10
                self.event("contact.answered", t + wait, channel, queue=queue, contact_id=cid)
                self.event("contact.ended", t + wait + 60, channel, queue=queue, contact_id=cid)

    def tickets(self, count: int, start: int = 0) -> None:
        """Every ticket is created, responded, solved and rated (rating 1 + i % 5); every 10th is
        tagged ``complaint``; every 4th also gets an explicit complaint event."""
        for i in range(start, start + count):
            tid = f"{self.tag}-t{i}"
            t = i * 0.01
            tags = ["complaint"] if i % 10 == 0 else []
            self.event("ticket.created", t, "email", ticket_id=tid, tags=tags)
            self.event("ticket.responded", t + 100, "email", ticket_id=tid)
            self.event("ticket.solved", t + 200, "email", ticket_id=tid)
            self.event("ticket.rated", t + 300, "email", ticket_id=tid, rating=1 + i % 5)
            if i % 4 == 0:
                self.event("complaint.received", t + 5, "email", ticket_id=tid, category="billing")

    def lines(self) -> list[str]:
        return [line for lines in self.by_channel.values() for line in lines]


def bad_lines(tag: str, random_queues: int) -> list[str]:
    """One of each kind of bad input, plus ``random_queues`` contacts in undeclared queues."""
    now = iso_z(time.time() - 600)
    lines = [
        "{not json at all",
        json.dumps(
            {
                "event_id": f"{tag}-big",
                "type": "contact.queued",
                "ts": now,
                "channel": "voice",
                "contact_id": "x",
                "pad": "p" * 999_850,
            }
        ),
        json.dumps(
            {
                "event_id": 5,
                "type": "contact.queued",
                "ts": now,
                "channel": "voice",
                "contact_id": "y",
            }
        ),
        json.dumps(
            {
                "event_id": f"{tag}-fax",
                "type": "contact.queued",
                "ts": now,
                "channel": "fax",
                "contact_id": "z",
            }
        ),
    ]
    lines.extend(
        json.dumps(
            {
                "event_id": f"{tag}-rq{i}",
                "type": "contact.queued",
                "ts": now,
                "channel": "voice",
                "queue": uuid.uuid4().hex,
                "contact_id": f"{tag}-rq{i}",
            }
        )
        for i in range(random_queues)
    )
    return lines


async def replay_samples(lines: list[str], settings: Settings, tmp_path: Path) -> dict[Any, float]:
    path = tmp_path / f"replay-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    return samples((await replay(path, settings)).decode())


def assert_counters_match(
    expected: dict[Any, float], engine: Engine, stats: DaemonStats, source: str
) -> None:
    """Every clock-independent engine counter, events by type and rejects by reason equal the
    replay's (whose source label is ``file``)."""
    compared = 0
    for row in series(engine):
        if row.name in COMPARED:
            if (row.name, row.labels) not in expected:
                # The exposition leaves out series that cannot apply (contact series of a
                # ticket-only channel); the engine's readout has them at 0.
                assert row.value == 0, (row.name, row.labels)
                continue
            assert row.value == expected[row.name, row.labels], (row.name, row.labels)
            compared += 1
    assert compared > 0
    for (name, labels), value in expected.items():
        label = dict(labels)
        if name == "support_monitor_events_total":
            assert stats.events[source, label["type"]] == value, label
        elif name == "support_monitor_events_rejected_total":
            assert stats.rejected[source, label["reason"]] == value, label
    for (src, kind), value in stats.events.items():
        assert src == source
        key = ("support_monitor_events_total", (("source", "file"), ("type", kind)))
        assert expected[key] == value
    for (src, reason), value in stats.rejected.items():
        assert src == source
        key = ("support_monitor_events_rejected_total", (("reason", reason), ("source", "file")))
        assert expected[key] == value


def processed(stats: DaemonStats) -> int:
    return (
        sum(stats.events.values()) + sum(stats.rejected.values()) + sum(stats.duplicates.values())
    )


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class LiveEngine:
    """What the daemon wires per source: engine, pipeline (wall clock), consume task."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = Engine(settings)
        self.stats = DaemonStats()
        self.pipeline = Pipeline(self.engine, self.stats, event_clock=False)
        self.fallback = MemoryDeadLetters()


def kafka_settings(bootstrap: str, topic: str, **kafka: Any) -> Settings:
    options = {
        "bootstrap_servers": bootstrap,
        "topics": [topic],
        "group_id": f"test-{uuid.uuid4().hex[:10]}",
        "max_batch": 500,
        "reconnect_max_seconds": 2,
        **kafka,
    }
    return make_settings(sources={"kafka": options, "simulator": {"enabled": False}})


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        # OFFSET_INVALID (-1001): nothing committed yet, i.e. the partition starts at 0
        return {tp.partition: max(tp.offset, 0) for tp in tps}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()
