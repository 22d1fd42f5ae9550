"""Cluster hand-over cases on the real Kafka state topic, with a real webhook receiver.

In the first three tests replicas are ``ClusterNode`` objects in this process, each with its
own ``StateTopic`` client on one fresh state topic of the local broker, its own alert delivery
(HTTP to the receiver) and its own partitions; the consumer group is the one thing not used: the
test calls the rebalance hooks (``assigned``, ``caught_up``, ``revoked``) in the order a group
would, so the order of owners is exact (A -> B -> A). Events go through each partition's
pipeline at the positions a consumer would deliver them. The rule ``ContactsWaiting`` (a contact
waiting, ``for: 1s``) becomes pending on the first tick and fires one second later without any
new event.

1. A partition returns to its earlier owner with no new events after the new owner paged: the
   returning owner takes the newer state from the topic (judged by ``seq``, not by the offset),
   so the receiver sees one firing and, once the contact is answered, one resolve.
2. A replica whose channel list differs takes nothing: every assigned partition is withheld
   (resume ``None``, reported to the source for pausing, never ready, never written), the gauge
   counts them, ``/readyz``'s reason names them, and the group's records are untouched.
3. A corrupt engine record: the partition is rebuilt from the beginning with the alert state of
   its own record, so the firing alert is not paged again; its resolve is sent once.

The last test runs replica processes (``support-monitor run``) in a real consumer group: a
replica with another channel list pauses its partitions (consumes and commits nothing), and the
group's replica later resumes from the records it left untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import TopicPartition
from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.cluster import store
from support_monitor.monitor.cluster.collector import ClusterCollector
from support_monitor.monitor.cluster.node import ClusterNode, Partition
from support_monitor.monitor.cluster.store import StateTopic
from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.deadletter import DeadLetter
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.sources.kafka import client_options
from support_monitor.monitor.stats import DaemonStats
from tests.conftest_services import delete_kafka_topics
from tests.monitor.cluster.cluster_scene import Hook
from tests.monitor.cluster.replicas import (
    Node,
    contacts_waiting_paged,
    produce,
    replica_config,
    wait_until,
)
from tests.support import CONFIG, iso, samples

pytestmark = pytest.mark.kafka

TOPIC = "events"
TP = TopicPartition(TOPIC, 0)


class _Positions:
    """What the node asks its Kafka source for: the offsets applied, whether the group still
    counts this replica as a partition's owner (both set by the test), and the records."""

    name = "kafka"

    def __init__(self) -> None:
        self.applied: dict[tuple[str, int], int] = {}
        self.member = True
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()

    async def events(self) -> AsyncIterator[Delivery]:
        while True:
            yield await self.deliveries.get()

    def state_offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.applied)

    async def holds(self, tp: TopicPartition) -> bool:
        del tp
        return self.member


def _settings(bootstrap: str, hook_url: str, channels: dict[str, Any] | None = None) -> Settings:
    return parse_settings(
        {
            **CONFIG,
            **({"channels": channels} if channels is not None else {}),
            "sources": {
                "simulator": {"enabled": False},
                "kafka": {"bootstrap_servers": bootstrap, "topics": [TOPIC], "group_id": "g"},
            },
            "cluster": {"enabled": True},
            "detectors": {
                "thresholds": [
                    {"name": "waiting", "metric": "support_queue_waiting", "op": ">", "value": 0},
                ]
            },
            "alerts": {"rules": [{"alert": "ContactsWaiting", "detector": "waiting", "for": "1s"}]},
            "notifiers": {
                "receivers": {
                    "hook": {"type": "webhook", "url": hook_url, "repeat_interval": "1h"}
                },
                "routes": [
                    {
                        "receiver": "hook",
                        "group_by": ["alertname", "channel", "queue"],
                        "group_wait": 0,
                        "group_interval": 0,
                    }
                ],
            },
        }
    )


@asynccontextmanager
async def _replica(settings: Settings, state_topic: str) -> AsyncIterator[ClusterNode]:
    stats = DaemonStats()
    source = _Positions()
    node = ClusterNode(settings, stats, source)  # type: ignore[arg-type]
    kafka = settings.sources.kafka
    assert kafka is not None
    node.store = StateTopic(state_topic, settings.cluster, client_options(kafka, None))
    await node.store.open()
    Pipeline(Engine(settings), stats, event_clock=False).register("kafka")
    try:
        yield node
    finally:
        await node.__aexit__(None, None, None)


def _apply(node: ClusterNode, offset: int, line: str) -> None:
    """Deliver the record at ``offset`` of the partition, as the consume loop does."""
    part = node.routes[f"{TOPIC}/0"]
    assert part.pipeline.process("kafka", Delivery(line.encode(), f"{TOPIC}/0/{offset}")) is None
    node.source.applied[TOPIC, 0] = offset + 1  # type: ignore[attr-defined]


def _event(kind: str, contact: str) -> str:
    return json.dumps(
        {
            "event_id": f"{kind}-{contact}",
            "type": kind,
            "ts": iso(time.time()),
            "channel": "voice",
            "queue": "billing",
            "contact_id": contact,
        }
    )


async def _take(node: ClusterNode) -> Partition:
    """The group assigns the partition to ``node``; it has no backlog, so it is ready at once."""
    await node.assigned({TP})
    node.caught_up(TP)
    part = node.parts[TP]
    assert part.ready
    return part


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _ticks(part: Partition, seconds: float) -> None:
    """Clock ticks every 0.25 s for ``seconds``, then time for deliveries to arrive."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        part.road.tick(time.time())
        await asyncio.sleep(0.25)
    await asyncio.sleep(0.3)


def _told(hook: Hook) -> Counter[tuple[str, str]]:
    with hook.lock:
        return Counter((status, starts) for _, status, starts, _ in hook.alerts)


@pytest.fixture
def hook() -> Iterator[Hook]:
    import threading  # noqa: PLC0415

    server = Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def state_topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"handover-{uuid.uuid4().hex[:8]}.state"
    yield name
    delete_kafka_topics(kafka_bootstrap, [name])


async def test_partition_back_to_its_earlier_owner_is_not_paged_twice(
    kafka_bootstrap: str,
    state_topic: str,
    hook: Hook,
) -> None:
    settings = _settings(kafka_bootstrap, hook.url)
    async with _replica(settings, state_topic) as a, _replica(settings, state_topic) as b:
        # A owns the partition: a contact waits; the rule goes pending (fires after 1 s).
        part = await _take(a)
        _apply(a, 0, _event("contact.queued", "c1"))
        part.road.tick(time.time())
        assert [al.state.value for r in part.alerting.rules for al in r.alerts()] == ["pending"]
        await a.revoked({TP}, {TP: 1})
        assert (part.seq, part.engine_seq, part.alerts_seq, part.offset) == (1, 1, 1, 1)

        # B takes it, no new event: after 1 s the alert fires and B pages.
        part_b = await _take(b)
        assert part_b.offset == 1
        await asyncio.sleep(1.1)
        part_b.road.tick(time.time())
        await _until(lambda: sum(_told(hook).values()) == 1, "B's firing notification")
        [(_, firing)] = _told(hook)
        # the group was paged: its next change waits for group_interval from that message
        [paged] = part_b.alerting.planner.groups.values()
        assert paged.open
        assert paged.last_sent is not None
        await b.revoked({TP}, {TP: 1})

        # A gets it back, still no new event: B's newer state (alert firing, receiver told)
        # wins over the engine A kept, although both reflect offset 1.
        back = await _take(a)
        # B wrote seq 2 (alert record, before paging: the message undelivered in it), seq 3
        # (alert record, once delivered) and seq 4 (both, on revocation).
        assert (part_b.seq, part_b.engine_seq, part_b.alerts_seq) == (4, 4, 4)
        assert back is not part, "A kept its own older partition state"
        assert (back.seq, back.engine_seq, back.alerts_seq, back.offset) == (4, 4, 4, 1)
        assert len(back.outbox) == 0
        # the group's timing came along: a change is an update of the paged group, not a new one
        assert list(back.alerting.planner.groups.values()) == [paged]
        await _ticks(back, 2.0)  # longer than the rule's "for": a new episode would fire
        told = _told(hook)
        assert list(told.elements()) == [("firing", firing)], told

        # The contact is answered: A sends the resolve, once.
        _apply(a, 1, _event("contact.answered", "c1"))
        back.road.tick(time.time())
        await _until(lambda: ("resolved", firing) in _told(hook), "the resolve")
        await _ticks(back, 1.0)
        told = _told(hook)
        assert sorted(told.elements()) == [("firing", firing), ("resolved", firing)], told


async def test_a_replica_cut_off_from_the_group_neither_pages_nor_overwrites(
    kafka_bootstrap: str,
    state_topic: str,
    hook: Hook,
) -> None:
    """A owns the partition and its alert is pending when A stops answering (a paused process:
    the group gives the partition to B without A's revocation). The contact is answered on B.
    When A runs again it ticks its stale engine, where the contact still waits: the alert
    fires there. Before A pages, the group tells it that it is no longer the owner: nothing is
    sent, nothing is written over B's records, A stops serving the partition, and when the
    partition comes back to A it takes B's newer state (before: A paged a firing that never
    was, and kept its stale engine on getting the partition back)."""
    settings = _settings(kafka_bootstrap, hook.url)
    async with _replica(settings, state_topic) as a, _replica(settings, state_topic) as b:
        part = await _take(a)
        _apply(a, 0, _event("contact.queued", "c1"))
        part.road.tick(time.time())
        await a.flush(part, "interval")  # seq 1: the contact waits, the alert pending

        # A is paused; the group gives the partition to B, which applies the answer.
        a.source.member = False  # type: ignore[attr-defined]
        part_b = await _take(b)
        assert part_b.seq == 1
        _apply(b, 1, _event("contact.answered", "c1"))
        part_b.road.tick(time.time())
        await b.flush(part_b, "interval")  # seq 2
        assert [al.state.value for r in part_b.alerting.rules for al in r.alerts()] == []

        # A runs again, past the rule's "for": its stale alert fires, and is not paged.
        await asyncio.sleep(1.1)
        await _ticks(part, 1.5)
        assert sum(_told(hook).values()) == 0, _told(hook)
        assert part.lost
        assert not part.ready
        assert list(a.serving()) == []
        assert not await a.flush(part, "interval")
        await a.revoked({TP}, {TP: 1})  # the group's late revocation: nothing written
        assert part.seq == 1

        # The partition comes back to A: it takes B's state (seq 2), not the engine it kept.
        a.source.member = True  # type: ignore[attr-defined]
        await b.revoked({TP}, {TP: 2})  # seq 3
        back = await _take(a)
        assert back is not part
        assert (back.seq, back.offset) == (3, 2)
        assert not back.engine.channels["voice"].queues["billing"].waiting
        await _ticks(back, 1.5)
        assert sum(_told(hook).values()) == 0, _told(hook)


async def test_an_idle_partition_stores_its_held_rejects(
    kafka_bootstrap: str,
    state_topic: str,
    hook: Hook,
) -> None:
    """An ``answered`` for a contact never queued is held for ``allowed_lateness`` (5 s), then
    rejected on a tick. With no later record on its partition, the consume loop stores it
    within about a second anyway: counted by reason and dead-lettered with its original bytes
    (before: a partition's held rejects were stored only after its next record, so an idle
    partition's were never counted)."""
    settings = _settings(kafka_bootstrap, hook.url)
    letters: list[DeadLetter] = []

    class Sink:
        async def write(self, letter: DeadLetter) -> None:
            letters.append(letter)

    async with _replica(settings, state_topic) as a:
        part = await _take(a)
        line = _event("contact.answered", "nobody")
        source: _Positions = a.source  # type: ignore[assignment]
        source.deliveries.put_nowait(Delivery(line.encode(), f"{TOPIC}/0/0"))
        consuming = asyncio.create_task(a.consume(Sink()))
        try:
            await _until(source.deliveries.empty, "the record taken")
            await asyncio.sleep(0.2)
            part.road.tick(time.time() + 6)  # past the allowed lateness
            await _until(lambda: bool(letters), "the held reject stored")
        finally:
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consuming
        [letter] = letters
        assert (letter.reason, letter.raw) == ("unknown_contact", line.encode())
        assert a.stats.rejected["kafka", "unknown_contact"] == 1


async def test_a_notification_not_delivered_yet_goes_to_the_next_owner(
    kafka_bootstrap: str,
    state_topic: str,
    hook: Hook,
) -> None:
    """The receiver refuses (503) while A's alert fires; A loses the partition with the page
    still being retried. The alert-state record hands it to B, which delivers it once the
    receiver is back (before: B took "sent" from the record and the page was never sent)."""
    settings = _settings(kafka_bootstrap, hook.url)
    hook.failing = True
    async with _replica(settings, state_topic) as a, _replica(settings, state_topic) as b:
        part = await _take(a)
        _apply(a, 0, _event("contact.queued", "c1"))
        part.road.tick(time.time())
        await asyncio.sleep(1.1)
        part.road.tick(time.time())
        await _until(lambda: hook.refused >= 1, "a refused attempt")
        assert len(part.outbox) == 1
        await a.revoked({TP}, {TP: 1})
        hook.failing = False

        part_b = await _take(b)
        assert [n.state for n in part_b.outbox.undelivered()] == ["firing"]
        await _until(lambda: sum(_told(hook).values()) == 1, "the firing, sent by B")
        await _ticks(part_b, 1.0)
        assert [status for status, _ in _told(hook).elements()] == ["firing"]
        await _until(lambda: len(part_b.outbox) == 0, "B's outbox settled")


async def test_corrupt_engine_record_keeps_alert_state(
    kafka_bootstrap: str,
    state_topic: str,
    hook: Hook,
) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415 - dev-only dependency

    settings = _settings(kafka_bootstrap, hook.url)
    queued = _event("contact.queued", "c7")
    async with _replica(settings, state_topic) as a:
        part = await _take(a)
        _apply(a, 0, queued)
        part.road.tick(time.time())
        await asyncio.sleep(1.1)
        part.road.tick(time.time())
        await _until(lambda: sum(_told(hook).values()) == 1, "the firing notification")
        [(_, firing)] = _told(hook)
        await a.revoked({TP}, {TP: 1})

    # The engine record is replaced by one failing its checksum (its alert record stays).
    engine = snapshot.encode(snapshot.capture(part.engine, {(TOPIC, 0): 1}))
    broken = engine[:-3] + bytes(x ^ 0xFF for x in engine[-3:])
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(
        state_topic,
        key=f"{TOPIC}/0",
        value=store.encode(
            store.PartitionSnapshot(
                key=f"{TOPIC}/0",
                offset=1,
                engine=broken,
                alerts=None,
                writer="test",
                written_at=time.time(),
                seq=part.seq + 1,
                shape=snapshot.fingerprint(settings),
            )
        ),
        headers=[
            ("seq", str(part.seq + 1).encode()),
            ("shape", snapshot.fingerprint(settings).encode()),
        ],
    )
    assert producer.flush(30) == 0

    async with _replica(settings, state_topic) as b:
        resume = await b.assigned({TP})
        assert resume == {TP: None}, "a refused engine record: rebuild from the beginning"
        rebuilt = b.parts[TP]
        # A wrote seq 1 (alert record, before paging), 2 (alert record, once delivered) and 3
        # (both, on revocation); the broken engine record is seq 4.
        assert (rebuilt.seq, rebuilt.engine_seq, rebuilt.alerts_seq) == (4, 0, 3)
        assert rebuilt.offset is None
        _apply(b, 0, queued)  # the rebuild reads the partition from its beginning
        b.caught_up(TP)
        await _ticks(rebuilt, 2.0)  # longer than the rule's "for": a new episode would fire
        told = _told(hook)
        assert list(told.elements()) == [("firing", firing)], told
        _apply(b, 1, _event("contact.answered", "c7"))
        rebuilt.road.tick(time.time())
        await _until(lambda: ("resolved", firing) in _told(hook), "the resolve")
        await _ticks(rebuilt, 1.0)
        told = _told(hook)
        assert sorted(told.elements()) == [("firing", firing), ("resolved", firing)], told
        await b.revoked({TP}, {TP: 2})


async def test_replica_with_another_channel_list_serves_nothing(
    kafka_bootstrap: str,
    state_topic: str,
    hook: Hook,
) -> None:
    settings = _settings(kafka_bootstrap, hook.url)
    other = {k: v for k, v in CONFIG["channels"].items() if k != "chat"}
    odd = _settings(kafka_bootstrap, hook.url, channels=other)
    tp1 = TopicPartition(TOPIC, 1)
    async with _replica(settings, state_topic) as a:
        await _take(a)
        _apply(a, 0, _event("contact.queued", "c9"))
        await a.revoked({TP}, {TP: 1})
    before = await _read(settings, state_topic)
    assert set(before.records) == {f"{TOPIC}/0", f"{TOPIC}/0/alerts"}

    async with _replica(odd, state_topic) as c:
        # Partition 0 has a record of another shape; partition 1 has none, but the group's
        # records are of another shape: neither is served.
        resume = await c.assigned({TP, tp1})
        assert resume == {TP: None, tp1: None}
        assert c.withheld() == {TP, tp1}
        assert c.routes == {}
        c.caught_up(TP)
        c.caught_up(tp1)
        assert not c.parts[TP].ready
        assert not c.parts[tp1].ready
        assert not c.ready()
        reason = c.not_ready_reason()
        assert reason is not None
        assert "events/0" in reason
        assert "events/1" in reason
        assert snapshot.fingerprint(settings) in reason
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClusterCollector(c))
        from prometheus_client import generate_latest  # noqa: PLC0415

        got = samples(generate_latest(registry).decode())
        assert got["support_monitor_cluster_config_mismatch", ()] == 2
        ready = {
            dict(k[1])["partition"]: v
            for k, v in got.items()
            if k[0] == "support_monitor_cluster_partition_ready"
        }
        assert ready == {"0": 0, "1": 0}
        await c.revoked({TP, tp1}, {})
        await c.flush_all("shutdown")
        assert c.withheld() == set()
    after = await _read(settings, state_topic)
    assert after.records == before.records  # the group's state was not overwritten
    assert after.seqs == before.seqs


async def _read(settings: Settings, state_topic: str) -> store.StateRead:
    kafka = settings.sources.kafka
    assert kafka is not None
    topic = StateTopic(state_topic, settings.cluster, client_options(kafka, None))
    await topic.open()
    try:
        return await topic.read_latest({f"{TOPIC}/0", f"{TOPIC}/0/alerts", f"{TOPIC}/1"})
    finally:
        await topic.close()


def test_mismatched_replica_does_not_consume_and_the_group_state_survives(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    tmp_path: Path,
    nodes: list[Node],
) -> None:
    """Real consumer group, replicas as ``support-monitor run`` processes. A replica without the
    channel ``chat`` joins alone after the group's replica stopped: it pauses both partitions
    (nothing consumed or committed), answers 503 with the reason and exports the gauge; the
    group's replica, restarted, resumes from the untouched records to the replay's counters."""
    from confluent_kafka import Consumer  # noqa: PLC0415 - dev-only dependency
    from confluent_kafka import TopicPartition as TopicPartitionCK  # noqa: PLC0415

    topic = make_kafka_topic(partitions=2, prefix="handover-shape")
    group = f"handover-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in CONFIG.items() if k in ("windows", "channels")}

    def config(name: str, channels: dict[str, Any]) -> Path:
        path = tmp_path / f"{name}.yaml"
        cfg = replica_config(
            kafka_bootstrap,
            topic,
            group,
            kafka={"max_batch": 50},
            cluster={"snapshot_interval": 0.5},
            channels=channels,
        )
        path.write_text(yaml.safe_dump(cfg))
        return path

    group_config = config("group", base["channels"])
    odd_config = config("odd", {k: v for k, v in base["channels"].items() if k != "chat"})
    tag = uuid.uuid4().hex[:6]
    first = [
        (ch, _queued(f"{tag}-{ch}-{i}", ch, q))
        for i in range(20)
        for ch, q in (("voice", "billing"), ("chat", "sales"))
    ]
    later = [
        (ch, _queued(f"{tag}-{ch}-later-{i}", ch, q))
        for i in range(7)
        for ch, q in (("voice", "tech"), ("chat", "support"))
    ]

    def waiting(node: Node) -> dict[str, float]:
        try:
            got = node.metrics()
        except (urllib.error.URLError, OSError):
            return {}
        out: dict[str, float] = {}
        for (name, labels), value in got.items():
            if name == "support_queue_waiting":
                ch = dict(labels)["channel"]
                out[ch] = out.get(ch, 0.0) + value
        return out

    def committed() -> list[int]:
        consumer = Consumer(
            {"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        try:
            parts = consumer.committed([TopicPartitionCK(topic, p) for p in (0, 1)], timeout=10)
            return [p.offset for p in parts]
        finally:
            consumer.close()

    try:
        produce(kafka_bootstrap, topic, first)
        a = Node(group_config, tmp_path, "group-1")
        nodes.append(a)
        wait_until(
            lambda: waiting(a) == {"voice": 20.0, "chat": 20.0},
            60,
            "the group's replica to apply the first events",
            a,
        )
        assert a.stop(signal.SIGTERM) == 0
        offsets = committed()
        assert sum(max(o, 0) for o in offsets) == len(first)
        produce(kafka_bootstrap, topic, later)

        odd = Node(odd_config, tmp_path, "odd")
        nodes.append(odd)
        wait_until(lambda: '"cluster_config_mismatch"' in odd.text(), 60, "the mismatch", odd)
        time.sleep(2.0)  # anything consumed would show up now
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{odd.port}/readyz", timeout=5)
        assert answer.value.code == 503
        body = answer.value.read().decode()
        assert "config shape differs" in body
        assert f"{topic}/0" in body
        assert f"{topic}/1" in body
        got = odd.metrics()
        assert got["support_monitor_cluster_config_mismatch", ()] == 2
        assert sum(v for (n, _), v in got.items() if n == "support_monitor_events_total") == 0
        assert not [k for k in got if k[0] == "support_queue_waiting"]
        assert odd.stop(signal.SIGTERM) == 0
        assert committed() == offsets  # nothing committed by the odd replica
        log = odd.text()
        assert log.count('"cluster_config_mismatch"') == 1, log[-3000:]
        assert '"snapshot_written"' not in log

        b = Node(group_config, tmp_path, "group-2")
        nodes.append(b)
        wait_until(
            lambda: waiting(b) == {"voice": 27.0, "chat": 27.0},
            60,
            "the group's replica to resume from its records",
            b,
        )
        text = b.text()
        assert text.count('"snapshot_loaded"') == 2, text[-3000:]
        assert '"snapshot_refused"' not in text
        assert b.stop(signal.SIGTERM) == 0
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.stop(signal.SIGTERM, timeout=30)
        delete_kafka_topics(kafka_bootstrap, [f"{group}.state"])


def _queued(contact: str, channel: str, queue: str) -> str:
    return json.dumps(
        {
            "event_id": contact,
            "type": "contact.queued",
            "ts": iso(time.time() - 60),
            "channel": channel,
            "queue": queue,
            "contact_id": contact,
        }
    )


def test_a_paused_replica_neither_pages_nor_counts_for_the_new_owner(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    tmp_path: Path,
    nodes: list[Node],
    hook: Hook,
) -> None:
    """Real consumer group, replicas as ``support-monitor run`` processes. B owns the one
    partition; a contact queues and B's rule ``ContactsWaiting`` (``for: 5s``) goes pending.
    B is paused (SIGSTOP); the contact is answered 2 s after it queued; A joins, and once B's
    session expires the group gives A the partition. B is resumed 25 s after the contact
    queued: its stale engine would fire the alert and count the contact's breach (T = 20 s).
    Before it pages or writes, the group tells B it lost the partition: nothing is sent, no
    breach is counted anywhere (before: B paged the firing and, taking the partition back,
    kept its stale engine with the breach)."""
    topic = make_kafka_topic(partitions=1, prefix="handover-pause")
    group = f"handover-{uuid.uuid4().hex[:8]}"

    def config(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        sections = contacts_waiting_paged(hook.url, hold="5s")
        cfg = replica_config(kafka_bootstrap, topic, group, cluster={"snapshot_interval": 1})
        path.write_text(yaml.safe_dump({**cfg, **sections}))
        return path

    def total(node: Node, name: str) -> float:
        try:
            got = node.metrics()
        except (urllib.error.URLError, OSError):
            return math.nan  # not listening yet
        return sum(v for (n, _), v in got.items() if n == name)

    def event(kind: str, ts: float) -> tuple[str, str]:
        line = json.loads(_event(kind, "p1"))
        line["ts"] = iso(ts)
        return "voice", json.dumps(line)

    try:
        b = Node(config("b"), tmp_path, "b")
        nodes.append(b)
        wait_until(lambda: '"cluster_partition_ready"' in b.text(), 60, "B to own it", b)
        queued_at = time.time()
        produce(kafka_bootstrap, topic, [event("contact.queued", queued_at)])
        wait_until(lambda: total(b, "support_queue_waiting") == 1, 30, "B to apply it", b)
        wait_until(lambda: '"state": "pending"' in b.text(), 30, "B's pending alert", b)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            produce(kafka_bootstrap, topic, [event("contact.answered", queued_at + 2)])
            a = Node(config("a"), tmp_path, "a")
            nodes.append(a)
            wait_until(
                lambda: total(a, "support_contacts_answered_total") == 1,
                60,
                "A to take the partition over",
                a,
            )
            time.sleep(max(0.0, queued_at + 25 - time.time()))
        finally:
            b.proc.send_signal(signal.SIGCONT)
        time.sleep(8.0)  # B runs again: it would page at once, and count the breach
        assert not hook.alerts, hook.alerts
        assert '"cluster_partition_lost"' in b.text()
        for node in (a, b):
            assert total(node, "support_sla_breaches_total") == 0, node.text()[-3000:]
        assert total(a, "support_queue_waiting") + total(b, "support_queue_waiting") == 0
        assert a.stop(signal.SIGTERM) == 0
        assert b.stop(signal.SIGTERM) == 0
    finally:
        delete_kafka_topics(kafka_bootstrap, [f"{group}.state"])
