"""Cluster mode: one replica of a consumer group, one engine per assigned partition.

Opt-in (``cluster.enabled``); ``run_daemon`` hands over to :func:`run_cluster`, the single-engine
path is untouched. The contract and the reasoning are in ``docs/scale-out.md``; in short:

* Producers key events by channel, so a channel lives in one partition and on one replica.
  Each assigned partition gets its own :class:`Partition` (engine, pipeline, tick road, detectors
  and alert rules, notification delivery). The consume loop routes each delivery by its
  position (``topic/partition/offset``) to its partition's pipeline.
* A partition *owns* the channels its engine has applied events of (:func:`owned_channels`);
  only owned channels of partitions that are caught up are exported and judged by alert rules,
  so ``sum by (channel)`` across replicas is exact and no replica exports a channel's zeros.
* Snapshots (engine + offsets + detector state + alert state) go to the compacted state topic
  (``monitor/cluster/store.py``): every ``cluster.snapshot_interval``, on revocation (before the
  offsets are committed and the listener returns), on shutdown, and before a notification is
  handed to its receiver (write-ahead: a new owner restores the "sent" record and never sends
  it again).
* On assignment the latest snapshot of each partition is read from the state topic (or the engine
  kept since this replica's own revocation, when it is at least as recent); refused snapshots are
  logged (``snapshot_refused``) and the partition is rebuilt from the beginning. The source seeks
  to the offset, and the partition becomes ready (exported, ticking, alerting) once it has read
  up to the end it had at assignment.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Self

import msgspec
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client.registry import CollectorRegistry

from alerts import persist
from alerts.notify.message import Notification
from alerts.outbox import Outbox
from alerts.runtime import Alerting
from monitor.clock import TickRoad
from monitor.cluster import store
from monitor.cluster.store import PartitionSnapshot, StateTopic, state_topic_name
from monitor.config import Settings
from monitor.deadletter import DeadLetterSink, JsonlDeadLetters, MemoryDeadLetters
from monitor.engine import snapshot
from monitor.engine.engine import Engine
from monitor.engine.snapshot import SnapshotError
from monitor.exporter import DaemonCollector
from monitor.http import MetricsServer
from monitor.pipeline import Pipeline
from monitor.sources.build import configured_sources, dead_letter_sink
from monitor.sources.kafka import KafkaSource, client_options, ssl_context
from monitor.stats import DaemonStats

log = structlog.get_logger("support_monitor.cluster")


def owned_channels(engine: Engine) -> set[str]:
    """Channels this engine applied events of (contacts, tickets, ratings or complaints)."""
    out = set()
    for name, ch in engine.channels.items():
        if any(q.queued or q.created for q in ch.queues.values()) or any(ch.ratings) or any(
            ch.complaints.values()
        ):
            out.add(name)
    return out


def _key(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


class _WriteAheadOutbox(Outbox):
    """In-memory outbox whose commit first stores the partition's snapshot (with the alert
    state that already counts these notifications as sent) in the state topic."""

    def __init__(self, max_size: int, partition: Partition) -> None:
        super().__init__(None, max_size)
        self._partition = partition
        self.committing = 0
        """Commits in progress (a revocation waits for them before stopping delivery)."""

    async def commit(self, state: bytes | None, new: list[Notification]) -> list[Notification]:
        del state
        self.committing += 1
        try:
            if new:
                await self._partition.node.flush(self._partition, "notify", force=True)
            return await super().commit(None, new)
        finally:
            self.committing -= 1


class Partition:
    """The state of one source partition: its engine and everything that reads it."""

    def __init__(self, node: ClusterNode, tp: TopicPartition, engine: Engine) -> None:
        settings = node.settings
        self.node = node
        self.tp = tp
        self.key = _key(tp)
        self.engine = engine
        self.pipeline = Pipeline(engine, node.stats, event_clock=False)
        notifiers = settings.notifiers.model_copy(update={"state_dir": None})
        self.alerting = Alerting(
            settings.detectors, settings.alerts, notifiers, engine, node.stats,
            channels=self.channels,
        )
        self.outbox = _WriteAheadOutbox(notifiers.outbox_max, self)
        self.alerting.outbox = self.outbox
        self.road = TickRoad(engine, settings.exporter.tick_seconds, self.alerting.handlers)
        self.offset: int | None = None
        """Offset the last snapshot written or loaded reflects."""
        self.owned = False
        self.ready = False
        self.assigned_at = 0.0
        self.delivery: asyncio.Task[None] | None = None

    def channels(self) -> set[str]:
        return owned_channels(self.engine)


class ClusterNode:
    """The partitions of this replica; the Kafka source's :class:`PartitionHooks`."""

    def __init__(self, settings: Settings, stats: DaemonStats, source: KafkaSource) -> None:
        assert settings.sources.kafka is not None
        self.settings = settings
        self.stats = stats
        self.source = source
        self.parts: dict[TopicPartition, Partition] = {}
        self.routes: dict[str, Partition] = {}
        """``topic/partition`` -> the owned partition its deliveries go to."""
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self.store: StateTopic | None = None
        self.snapshots: dict[str, int] = {}
        """Snapshots written, by reason (exported)."""
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        kafka = self.settings.sources.kafka
        assert kafka is not None
        context = await asyncio.to_thread(ssl_context, kafka)
        topic = state_topic_name(self.settings.cluster, kafka.group_id)
        self.store = StateTopic(topic, self.settings.cluster, client_options(kafka, context))
        await self.store.open()
        self.source.use_hooks(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for part in self.parts.values():
            await self._stop_delivery(part, drain=0.0)
        if self.store is not None:
            await self.store.close()

    # ------------------------------------------------------------------ hooks

    async def assigned(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int | None]:
        assert self.store is not None
        start = time.perf_counter()
        try:
            stored = await self.store.read_latest({_key(tp) for tp in assigned})
        except (KafkaError, TimeoutError, OSError) as error:
            # Without the state topic nothing is known: rebuild rather than guess.
            log.error("state_topic_read_failed", error=repr(error))  # noqa: TRY400
            stored = {}
        resume: dict[TopicPartition, int | None] = {}
        for tp in sorted(assigned):
            part = self._take(tp, stored.get(_key(tp)))
            part.owned, part.ready, part.assigned_at = True, False, time.monotonic()
            self.parts[tp] = part
            self.routes[part.key] = part
            resume[tp] = part.offset
        log.info(
            "cluster_partitions_loaded",
            partitions={p.key: p.offset for p in self.parts.values() if p.owned},
            seconds=round(time.perf_counter() - start, 3),
        )
        return resume

    def _take(self, tp: TopicPartition, data: bytes | None) -> Partition:
        """The engine kept since our own revocation or the stored snapshot: the more recent."""
        held = self.parts.get(tp)
        if held is not None and held.offset is None:
            held = None
        loaded: Partition | None = None
        if data is not None and held is not None and held.offset is not None:
            try:
                if store.decode(data, _key(tp)).offset <= held.offset:
                    data = None  # ours is as recent: no need to decode the engine
            except SnapshotError:
                data = None
        if data is not None:
            try:
                loaded = self._restore(tp, data)
            except SnapshotError as exc:
                log.error(  # noqa: TRY400 - the reason is the message
                    "snapshot_refused", partition=_key(tp), reason=str(exc),
                    action="rebuilding the partition from the broker (earliest offset)",
                )
        if held is not None and held.offset is not None and (
            loaded is None or loaded.offset is None or held.offset >= loaded.offset
        ):
            return held
        if loaded is not None:
            return loaded
        return Partition(self, tp, Engine(self.settings))

    def _restore(self, tp: TopicPartition, data: bytes) -> Partition:
        env = store.decode(data, _key(tp))
        engine, offsets, snap = snapshot.from_bytes(env.engine, self.settings)
        offset = offsets.get((tp.topic, tp.partition))
        if offset is None or offset != env.offset:
            raise SnapshotError(f"snapshot holds no offset of {_key(tp)} or another one")
        part = Partition(self, tp, engine)
        part.offset = offset
        if snap.detectors is not None:  # baselines, hysteresis, histories (never raises)
            part.alerting.suite.restore_state(snap.detectors)
        if env.alerts is not None:
            try:
                count, sent = persist.load(env.alerts, part.alerting.rules)
            except (ValueError, msgspec.DecodeError) as exc:
                raise SnapshotError(f"alert state does not decode: {exc}") from None
            part.alerting.planner.sent = sent
        else:
            count = 0
        log.info(
            "snapshot_loaded", partition=part.key, offset=offset, writer=env.writer,
            age_seconds=round(time.time() - env.written_at, 3), alerts=count,
            detector_state=snap.detectors is not None,
            open_contacts=len(engine.contacts), tickets=len(engine.tickets),
        )
        return part

    def caught_up(self, tp: TopicPartition) -> None:
        part = self.parts.get(tp)
        if part is None or not part.owned or part.ready:
            return
        part.road.tick(time.time())
        part.ready = True
        if part.delivery is None or part.delivery.done():
            part.delivery = asyncio.create_task(
                part.alerting.deliver_forever(), name=f"alerts:{part.key}"
            )
        log.info(
            "cluster_partition_ready", partition=part.key,
            seconds=round(time.monotonic() - part.assigned_at, 3),
            channels=sorted(part.channels()),
        )

    async def revoked(
        self, revoked: set[TopicPartition], offsets: dict[TopicPartition, int]
    ) -> None:
        for tp in sorted(revoked):
            part = self.parts.get(tp)
            if part is None or not part.owned:
                continue
            part.owned = part.ready = False
            self.routes.pop(part.key, None)
            await self._stop_delivery(part, drain=self.settings.cluster.drain_seconds)
            await self.flush(part, "revoked", force=True, offset=offsets.get(tp))

    async def _stop_delivery(self, part: Partition, drain: float) -> None:
        task, part.delivery = part.delivery, None
        if task is None:
            return
        deadline = time.monotonic() + drain
        alerting = part.alerting
        while (len(part.outbox) or part.outbox.committing or alerting.planned) and (  # noqa: ASYNC110
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as error:  # noqa: BLE001 - delivery of one partition never ends us
            log.warning("alert_delivery_failed", partition=part.key, error=repr(error))

    # ------------------------------------------------------------------ snapshots

    async def flush(
        self, part: Partition, reason: str, *, force: bool = False, offset: int | None = None
    ) -> None:
        """Write the partition's snapshot to the state topic (skipped when it reflects
        nothing yet, or, unless forced, when the partition is no longer ours)."""
        if self.store is None:
            return
        async with self._lock:
            if not force and not part.owned:
                return
            if offset is None:
                offset = self.source.state_offsets().get((part.tp.topic, part.tp.partition))
            if offset is None:
                return
            start = time.perf_counter()
            captured = snapshot.capture(
                part.engine, {(part.tp.topic, part.tp.partition): offset},
                part.alerting.suite.export_state(),
            )
            alerts = persist.dump(part.alerting.rules, part.alerting.planner.sent)
            data = await asyncio.to_thread(snapshot.encode, captured)
            record = store.encode(PartitionSnapshot(
                key=part.key, offset=offset, engine=data, alerts=alerts, writer=self.writer,
                written_at=time.time(),
            ))
            try:
                await self.store.write(part.key, record)
            except (KafkaError, TimeoutError, OSError) as error:
                log.error(  # noqa: TRY400
                    "snapshot_write_failed", partition=part.key, error=repr(error), reason=reason
                )
                return
            part.offset = offset
            self.snapshots[reason] = self.snapshots.get(reason, 0) + 1
            (log.debug if reason == "interval" else log.info)(
                "snapshot_written", partition=part.key, reason=reason, offset=offset,
                bytes=len(record), seconds=round(time.perf_counter() - start, 3),
            )

    async def flush_all(self, reason: str) -> None:
        for part in list(self.parts.values()):
            if part.owned and part.ready:
                await self.flush(part, reason)

    async def snapshot_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster.snapshot_interval)
            await self.flush_all("interval")

    # ------------------------------------------------------------------ run

    def serving(self) -> Iterator[Partition]:
        """Owned partitions that caught up: the ones exported, ticking and alerting."""
        return (p for p in list(self.parts.values()) if p.owned and p.ready)

    def ready(self) -> bool:
        return bool(self.stats.source_up.get(self.source.name)) and all(
            p.ready for p in self.parts.values() if p.owned
        )

    async def tick_forever(self) -> None:
        interval = self.settings.exporter.tick_seconds
        while True:
            now = time.time()
            due = math.floor(now / interval) * interval + interval
            await asyncio.sleep(due - now)
            woke = time.time()
            self.stats.loop_lag_seconds = max(0.0, woke - due)
            for part in self.serving():
                part.road.tick(woke)

    async def consume(self, sink: DeadLetterSink) -> None:
        """The consume loop: every delivery to its partition's pipeline."""
        source = self.source
        name = source.name
        Pipeline(Engine(self.settings), self.stats, event_clock=False).register(name)
        routes = self.routes
        async for delivery in source.events():
            position = delivery.position
            part = routes.get(position[: position.rfind("/")])
            if part is None:  # a record of a partition revoked meanwhile: its owner reads it
                continue
            letter = part.pipeline.process(name, delivery)
            if letter is not None:
                await sink.write(letter)


async def run_cluster(settings: Settings, listen: str | None = None) -> int:
    """The supervisor of a cluster replica (``support-monitor run`` with ``cluster.enabled``)."""
    from monitor.cluster.collector import ClusterCollector  # noqa: PLC0415
    from monitor.daemon import (  # noqa: PLC0415 - the daemon imports this module lazily
        _flush_dead_letters,
        _Shutdown,
        _watch_signals,
    )

    stats = DaemonStats()
    [source] = configured_sources(settings, stats)
    assert isinstance(source, KafkaSource)
    node = ClusterNode(settings, stats, source)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(node))
    registry.register(DaemonCollector(stats))
    address = listen or settings.exporter.listen
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        sink: DeadLetterSink
        file_sink: JsonlDeadLetters | None = None
        if settings.dead_letter.path is not None:
            file_sink = stack.enter_context(JsonlDeadLetters(Path(settings.dead_letter.path)))
            sink = file_sink
        else:
            sink = MemoryDeadLetters()
        server = await stack.enter_async_context(MetricsServer(registry, address, node.ready))
        await stack.enter_async_context(node)
        await stack.enter_async_context(source)
        assert node.store is not None
        log.info(
            "cluster_started", listen=f"{address.rpartition(':')[0]}:{server.port}",
            group_id=source.settings.group_id, topics=list(source.settings.topics),
            state_topic=node.store.topic, writer=node.writer,
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(node.consume(dead_letter_sink(source, sink)), name="consume")
                tasks.create_task(node.tick_forever(), name="clock")
                tasks.create_task(node.snapshot_forever(), name="state:snapshot")
                if file_sink is not None:
                    tasks.create_task(_flush_dead_letters(file_sink), name="dead-letters:flush")
                tasks.create_task(_watch_signals(stop), name="signals")
        except* _Shutdown:
            await node.flush_all("shutdown")
            log.info("cluster_stopped", reason="signal")
    return 0
