"""Cluster mode: one replica of a consumer group, one engine per assigned partition.

Opt-in (``cluster.enabled``); ``run_daemon``'s supervisor then serves a ``ClusterReplica``
(``monitor/cluster/supervisor.py``) instead of one engine. The contract and the
reasoning are in ``docs/scale-out.md``; in short:

* Producers key events by channel, so a channel lives in one partition and on one replica.
  Each assigned partition gets its own :class:`Partition` (engine, pipeline, tick road, detectors
  and alert rules, notification delivery). The consume loop routes each delivery by its
  position (``topic/partition/offset``) to its partition's pipeline.
* A partition *owns* the channels its engine has applied events of (:func:`owned_channels`);
  only owned channels of partitions that are caught up are exported and judged by alert rules,
  so ``sum by (channel)`` across replicas is exact and no replica exports a channel's zeros.
* Snapshots (engine + offsets + detector state + alert state) go to the compacted state topic
  (``monitor/cluster/store.py``): every ``cluster.snapshot_interval``, on revocation (after the
  revoked partitions' offsets are committed, before the listener returns), on shutdown, and
  before a notification is
  handed to its receiver (write-ahead: a new owner restores the "sent" record and never sends
  it again).
* The alert state has its own record (``<topic>/<partition>/alerts``), written with every
  snapshot and alone before a notification; every record carries the partition's sequence
  number (``seq``, raised by one on every write), so recency is judged by ``seq``, not by the
  Kafka offset (alert state changes without new events).
* On assignment the latest records of each partition are read from the state topic; the engine
  kept since this replica's own revocation is used only when no newer record (higher ``seq``)
  exists. Refused engine records are logged (``snapshot_refused``) and the partition is rebuilt
  from the beginning, keeping the alert state of its own record. The source seeks to the offset,
  and the partition becomes ready (exported, ticking, alerting) once it has read up to the end
  it had at assignment.
* A partition whose state was written under another config shape (the ``shape`` header of its
  record, or of the group's records when it has none) is *withheld*: not consumed, not
  committed, never written, never ready (``/readyz`` 503 with the reason, gauge
  ``support_monitor_cluster_config_mismatch``, log ``cluster_config_mismatch``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

import msgspec
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from support_monitor.alerts import persist
from support_monitor.alerts.notify import message
from support_monitor.alerts.notify.message import Notification
from support_monitor.alerts.outbox import Outbox
from support_monitor.monitor.clock import run_wall_clock
from support_monitor.monitor.cluster import store
from support_monitor.monitor.cluster.store import (
    AlertRecord,
    PartitionSnapshot,
    StateRead,
    StateRecord,
    StateTopic,
    state_topic_name,
)
from support_monitor.monitor.config import Settings
from support_monitor.monitor.consume import HELD_DRAIN_SECONDS, store_deferred
from support_monitor.monitor.deadletter import DeadLetterSink
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine, RestartNeeded, shape_change
from support_monitor.monitor.engine.snapshot import SnapshotError
from support_monitor.monitor.errors import raising_line
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.road import build_road
from support_monitor.monitor.sources.kafka import KafkaSource, client_options, ssl_context
from support_monitor.monitor.stats import DaemonStats

log = structlog.get_logger("support_monitor.cluster")


def owned_channels(engine: Engine) -> set[str]:
    """Channels this engine applied events of (contacts, tickets, ratings or complaints)."""
    out = set()
    for name, ch in engine.channels.items():
        if (
            any(q.queued or q.created for q in ch.queues.values())
            or any(ch.ratings)
            or any(ch.complaints.values())
        ):
            out.add(name)
    return out


def _key(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


class _WriteAheadOutbox(Outbox):
    """In-memory outbox whose commit first stores the partition's alert-state record (which
    already counts these notifications as sent, and carries them as undelivered) in the state
    topic, and whose every settled notification writes the record again without it. So the
    record hands the undelivered notifications to the next owner of the partition, on a
    revocation or after a crash (then a notification delivered just before the crash, whose
    record was not written yet, is sent once more: at-least-once, with its idempotency key)."""

    def __init__(self, max_size: int, partition: Partition) -> None:
        super().__init__(None, max_size)
        self._partition = partition
        self.committing = 0
        """Commits and settlements in progress (a revocation waits for them before stopping
        delivery)."""

    async def commit(self, state: bytes | None, new: list[Notification]) -> list[Notification]:
        del state
        self.committing += 1
        try:
            if new and not await self._partition.node.flush(
                self._partition, "notify", force=True, engine=False, new=new
            ):
                return []  # the partition is lost: its next owner decides what to send
            return await super().commit(None, new)
        finally:
            self.committing -= 1

    async def done(self, key: str) -> None:
        self.committing += 1
        try:
            await super().done(key)
            await self._partition.node.flush(self._partition, "delivered", engine=False)
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
        notifiers = settings.notifiers.model_copy(update={"state_dir": None})
        road = build_road(
            settings,
            engine,
            node.stats,
            replay=False,
            notifiers=notifiers,
            channels=self.channels,
            applied=node.applied,
        )
        self.pipeline, self.alerting, self.road = road.pipeline, road.alerting, road.ticks
        self.outbox = _WriteAheadOutbox(notifiers.outbox_max, self)
        self.alerting.outbox = self.outbox
        self.offset: int | None = None
        """Offset the last snapshot written or loaded reflects."""
        self.seq = 0
        """Sequence number of the last record written or loaded for this partition."""
        self.engine_seq = 0
        """``seq`` of the engine record this engine was written to or loaded from (0: none)."""
        self.alerts_seq = 0
        """``seq`` of the alert state this partition's alert state was written to or loaded
        from (0: none)."""
        self.owned = False
        self.ready = False
        self.withheld: str | None = None
        """Why this replica does not serve the partition (config shape), or ``None``."""
        self.lost = False
        """The group gave the partition to another member while this replica could not
        answer (see ``ClusterNode.flush``): no longer served, written or kept."""
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
        self.shape = snapshot.fingerprint(settings)
        """Fingerprint of this replica's config shape (written into every engine record)."""
        self.store: StateTopic | None = None
        self.snapshots: dict[str, int] = {}
        """Snapshots written, by reason (exported)."""
        self._lock = asyncio.Lock()
        self.applied = asyncio.Event()
        """Set by every partition's pipeline on an applied event: the clock ticks early."""

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
        keys = {_key(tp) for tp in assigned}
        try:
            found = await self.store.read_latest(keys | {store.alerts_key(k) for k in keys})
        except (KafkaError, TimeoutError, OSError) as error:
            # Without the state topic nothing is known: rebuild rather than guess.
            log.error("state_topic_read_failed", error=repr(error))  # noqa: TRY400
            found = StateRead()
        resume: dict[TopicPartition, int | None] = {}
        withheld: dict[str, str] = {}
        for tp in sorted(assigned):
            reason = self._shape_mismatch(tp, found)
            if reason is not None:
                part = Partition(self, tp, Engine(self.settings))
                part.withheld = reason
                withheld[part.key] = reason
            else:
                part = self._take(tp, found)
                self.routes[part.key] = part
            part.owned, part.ready, part.assigned_at = True, False, time.monotonic()
            self.parts[tp] = part
            resume[tp] = None if part.withheld else part.offset
        if withheld:
            log.error(
                "cluster_config_mismatch",
                partitions=withheld,
                shape=self.shape,
                action="not serving these partitions (not consumed, committed or written);"
                " /readyz answers 503. Give this replica the group's config, or move the"
                " whole group to a new cluster.state_topic",
            )
        log.info(
            "cluster_partitions_loaded",
            partitions={p.key: p.offset for p in self.parts.values() if p.owned and not p.withheld},
            seconds=round(time.perf_counter() - start, 3),
        )
        return resume

    def reconfigure(self, settings: Settings) -> None:
        """Config reload: every partition this replica holds (owned, withheld, or kept since a
        revocation) takes ``settings``, and partitions assigned later are built with it. Raises
        ``RestartNeeded``, having changed nothing, when the state's shape would change (the
        shape every replica's records are written under, see ``withheld``)."""
        why = shape_change(self.settings, settings)
        if why is not None:
            raise RestartNeeded(why)
        self.settings = settings
        for part in list(self.parts.values()):
            part.engine.reconfigure(settings)
            part.alerting.reconfigure(settings.detectors, settings.alerts)

    def withheld(self) -> set[TopicPartition]:
        """Assigned partitions this replica does not serve (the source pauses them)."""
        return {tp for tp, p in self.parts.items() if p.owned and p.withheld is not None}

    def not_ready_reason(self) -> str | None:
        """Why ``/readyz`` answers 503 (``None``: ready)."""
        if not self.stats.source_up.get(self.source.name):
            return "kafka unreachable"
        withheld = {p.key: p.withheld for p in self.parts.values() if p.owned and p.withheld}
        if withheld:
            return "config shape differs from the group's state, partitions not served: " + (
                "; ".join(f"{k}: {v}" for k, v in sorted(withheld.items()))
            )
        catching = sorted(p.key for p in self.parts.values() if p.owned and not p.ready)
        if catching:
            return "catching up: " + ", ".join(catching)
        return None

    def _shape_mismatch(self, tp: TopicPartition, found: StateRead) -> str | None:
        """Why this replica must not serve ``tp``: the partition's engine record, or (when it
        has none) any engine record of the group, was written under another config shape."""
        key = _key(tp)
        theirs = found.shapes.get(key)
        if theirs is not None:
            return None if theirs == self.shape else f"its state has config shape {theirs}"
        if key in found.records:
            return None  # a record without the header: its own shape check decides
        topics = set(self.settings.sources.kafka.topics) if self.settings.sources.kafka else set()
        others = sorted(
            {
                shape
                for k, shape in found.shapes.items()
                if shape != self.shape and k.rpartition("/")[0] in topics
            }
        )
        if others:
            return f"no state yet, the group's state has config shape {', '.join(others)}"
        return None

    def _take(self, tp: TopicPartition, found: StateRead) -> Partition:
        """The engine kept since our own revocation unless the state topic holds a newer
        engine record (higher ``seq``); then the newest alert state of the two."""
        key = _key(tp)
        held = self.parts.get(tp)
        if held is not None and (held.offset is None or held.withheld is not None or held.lost):
            held = None
        env: PartitionSnapshot | None = None
        data = found.records.get(key)
        if data is not None:
            try:
                env = store.decode(data, key)
            except SnapshotError as exc:
                self._refused(key, str(exc), kept=held is not None)
        if env is not None and held is not None and env.seq <= held.engine_seq:
            env = None  # the record we wrote or loaded last: ours is as recent or newer
        part: Partition | None = None
        if env is not None:
            try:
                part = self._restore(tp, env)
            except SnapshotError as exc:
                self._refused(key, str(exc), kept=held is not None)
        if part is None:
            part = held if held is not None else Partition(self, tp, Engine(self.settings))
        part.seq = max(
            part.seq,
            env.seq if env is not None else 0,
            *(found.seqs.get(k, 0) for k in (key, store.alerts_key(key))),
        )
        return self._newest_alerts(part, env, found)

    def _refused(self, key: str, reason: str, *, kept: bool) -> None:
        log.error(  # the reason is the message; no traceback
            "snapshot_refused",
            partition=key,
            reason=reason,
            action="continuing from the engine this replica kept since its revocation"
            if kept
            else "rebuilding the partition from the broker (earliest offset)",
        )

    def _newest_alerts(
        self, part: Partition, env: PartitionSnapshot | None, found: StateRead
    ) -> Partition:
        """Load the newest alert state (its own record, or that of an older engine record)
        when it is newer than the one ``part`` holds."""
        key = part.key
        best: tuple[int, bytes] | None = None
        pending: list[bytes] = []
        data = found.records.get(store.alerts_key(key))
        if data is not None:
            try:
                record: AlertRecord = store.decode_alerts(data, key)
                best, pending = (record.seq, record.alerts), record.pending
            except SnapshotError as exc:
                log.error(  # noqa: TRY400 - the reason is the message
                    "snapshot_refused",
                    partition=store.alerts_key(key),
                    reason=str(exc),
                    action="using the alert state of the engine record, if any",
                )
        if env is not None and env.alerts is not None and (best is None or env.seq > best[0]):
            best, pending = (env.seq, env.alerts), []
        held = part is self.parts.get(part.tp)
        if best is None or (held and best[0] <= part.alerts_seq):
            return part
        if held:
            part = self._rewrap(part)  # the engine we kept: fresh rules for the newer state
        try:
            count, sent, groups = persist.load(best[1], part.alerting.rules)
            undelivered = [message.decode(n) for n in pending]
        except (ValueError, msgspec.DecodeError) as exc:
            log.error(  # noqa: TRY400 - the reason is the message
                "snapshot_refused",
                partition=store.alerts_key(key),
                reason=f"alert state does not decode: {exc}",
                action="starting without alert state",
            )
            return self._rewrap(part)
        part.alerting.planner.sent = sent
        part.alerting.planner.groups = groups  # group_wait/group_interval go on where they were
        part.outbox.put_back(undelivered)  # the previous owner's undelivered notifications
        part.alerts_seq = best[0]
        log.info(
            "alert_state_loaded",
            partition=key,
            seq=best[0],
            alerts=count,
            receivers_told=len(sent),
            undelivered=len(undelivered),
        )
        return part

    def _rewrap(self, held: Partition) -> Partition:
        """A new partition around ``held``'s engine with its detector state but no alerts."""
        part = Partition(self, held.tp, held.engine)
        part.alerting.suite.restore_state(held.alerting.suite.export_state())
        part.offset, part.seq, part.engine_seq = held.offset, held.seq, held.engine_seq
        return part

    def _restore(self, tp: TopicPartition, env: PartitionSnapshot) -> Partition:
        engine, offsets, snap = snapshot.from_bytes(env.engine, self.settings)
        offset = offsets.get((tp.topic, tp.partition))
        if offset is None or offset != env.offset:
            raise SnapshotError(f"snapshot holds no offset of {_key(tp)} or another one")
        part = Partition(self, tp, engine)
        part.offset = offset
        part.seq = part.engine_seq = env.seq
        if snap.detectors is not None:  # baselines, hysteresis, histories (never raises)
            part.alerting.suite.restore_state(snap.detectors)
        log.info(
            "snapshot_loaded",
            partition=part.key,
            offset=offset,
            seq=env.seq,
            writer=env.writer,
            age_seconds=round(time.time() - env.written_at, 3),
            detector_state=snap.detectors is not None,
            open_contacts=len(engine.contacts),
            tickets=len(engine.tickets),
        )
        return part

    def caught_up(self, tp: TopicPartition) -> None:
        part = self.parts.get(tp)
        if part is None or not part.owned or part.ready or part.withheld is not None or part.lost:
            return
        part.road.tick(time.time())
        part.ready = True
        if part.delivery is None or part.delivery.done():
            part.delivery = asyncio.create_task(keep_delivering(part), name=f"alerts:{part.key}")
        log.info(
            "cluster_partition_ready",
            partition=part.key,
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
            if part.withheld is not None:  # never served: nothing to drain or write
                part.owned = False
                continue
            if part.lost:  # its state is stale: another member owns what it reflects
                part.owned = False
                await self._stop_delivery(part, drain=0.0)
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
        self,
        part: Partition,
        reason: str,
        *,
        force: bool = False,
        offset: int | None = None,
        engine: bool = True,
        new: Sequence[Notification] = (),
    ) -> bool:
        """Write the partition's records to the state topic: the engine record (skipped when it
        reflects nothing yet) and the alert-state record, or (``engine=False``) the alert-state
        record alone. Skipped, unless forced, when the partition is no longer ours; never for a
        withheld partition (its records belong to the group's config).

        First the group is asked whether this consumer still owns the partition
        (``KafkaSource.holds``). When it does not, this replica was cut off from the group
        (paused or partitioned past the session timeout) and another member may already serve
        the partition and have written newer records: nothing is written, the partition is
        *lost* (no longer ticked, exported, written or delivered from, its state dropped) and
        ``False`` is returned, so that its notifications are not sent. ``True`` otherwise
        (written, skipped, or a write that failed)."""
        if self.store is None or part.withheld is not None:
            return True
        async with self._lock:
            if part.lost:
                return False
            if not force and not part.owned:
                return True
            if not await self.source.holds(part.tp):
                self._lose(part, reason)
                return False
            await self._write(part, reason, offset, engine=engine, new=new)
            return True

    async def _write(
        self,
        part: Partition,
        reason: str,
        offset: int | None,
        *,
        engine: bool,
        new: Sequence[Notification],
    ) -> None:
        """The records of :meth:`flush`, written (called under its lock)."""
        assert self.store is not None
        start = time.perf_counter()
        seq = part.seq + 1
        records: list[StateRecord] = []
        if engine:
            if offset is None:
                offset = self.source.state_offsets().get((part.tp.topic, part.tp.partition))
            if offset is None:
                return
            captured = snapshot.capture(
                part.engine,
                {(part.tp.topic, part.tp.partition): offset},
                part.alerting.suite.export_state(),
            )
            data = await asyncio.to_thread(snapshot.encode, captured)
            records.append(
                StateRecord(
                    part.key,
                    store.encode(
                        PartitionSnapshot(
                            key=part.key,
                            offset=offset,
                            engine=data,
                            alerts=None,
                            writer=self.writer,
                            written_at=time.time(),
                            seq=seq,
                            shape=self.shape,
                        )
                    ),
                    seq,
                    self.shape,
                )
            )
        planner = part.alerting.planner
        alerts = persist.dump(
            part.alerting.rules, planner.sent, planner.groups, part.alerting.evaluated_at
        )
        undelivered = part.outbox.undelivered()
        held = {n.key for n in undelivered}
        undelivered += [n for n in new if n.key not in held]
        records.append(
            StateRecord(
                store.alerts_key(part.key),
                store.encode(
                    AlertRecord(
                        key=part.key,
                        seq=seq,
                        alerts=alerts,
                        writer=self.writer,
                        written_at=time.time(),
                        pending=[message.encode(n) for n in undelivered],
                    )
                ),
                seq,
            )
        )
        try:
            await self.store.write(records)
        except (KafkaError, TimeoutError, OSError) as error:
            # The broker may have stored it after all: never reuse this seq for other state.
            part.seq = seq
            log.error(  # noqa: TRY400
                "snapshot_write_failed", partition=part.key, error=repr(error), reason=reason
            )
            return
        part.seq = part.alerts_seq = seq
        if engine:
            part.offset, part.engine_seq = offset, seq
        self.snapshots[reason] = self.snapshots.get(reason, 0) + 1
        (log.debug if reason == "interval" else log.info)(
            "snapshot_written",
            partition=part.key,
            reason=reason,
            offset=offset,
            seq=seq,
            bytes=sum(len(r.value) for r in records),
            seconds=round(time.perf_counter() - start, 3),
        )

    def _lose(self, part: Partition, reason: str) -> None:
        """Stop serving a partition the group gave to another member (see :meth:`flush`); its
        delivery is cancelled here and awaited on revocation or stop."""
        part.lost = True
        part.ready = False
        self.routes.pop(part.key, None)
        if part.delivery is not None and part.delivery is not asyncio.current_task():
            part.delivery.cancel()
        log.error(
            "cluster_partition_lost",
            partition=part.key,
            during=reason,
            action="not serving, writing or paging for it; its state is dropped and the"
            " group's newest record is loaded if it comes back",
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
        return self.not_ready_reason() is None

    async def tick_forever(self) -> None:
        """The one wall clock of every serving partition (early ticks after applied events)."""
        exporter = self.settings.exporter
        await run_wall_clock(
            self._tick,
            exporter.tick_seconds,
            self.stats,
            applied=self.applied,
            early=exporter.early_tick_seconds,
        )

    def _tick(self, now: float) -> None:
        for part in self.serving():
            part.road.tick(now)

    async def consume(self, sink: DeadLetterSink) -> None:
        """The consume loop: every delivery to its partition's pipeline. As ``consume`` does
        for one engine, the rejects each partition's tick decided later (held outcomes whose
        item never opened), and the held outcomes that applied, are stored and counted after
        the partition's next delivery and also every ``HELD_DRAIN_SECONDS`` (the
        ``consume:held`` task), so that an idle partition's are not left waiting."""
        async with asyncio.TaskGroup() as tasks:
            drain = tasks.create_task(self._drain(sink), name="consume:held")
            try:
                await self._deliveries(sink)
            finally:
                drain.cancel()

    async def _drain(self, sink: DeadLetterSink) -> None:
        name = self.source.name
        while True:
            await asyncio.sleep(HELD_DRAIN_SECONDS)
            for part in list(self.parts.values()):
                await store_deferred(name, part.pipeline, sink)

    async def _deliveries(self, sink: DeadLetterSink) -> None:
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
            for late in part.pipeline.take_deferred(name):  # held outcomes that expired
                await sink.write(late)


async def keep_delivering(part: Partition) -> None:
    """A partition's alert delivery, owned by ``part.delivery`` (cancelled on revocation and
    stop). Should it fail (a defect), it is logged with the raising line and started again a
    second later, so the partition does not stop paging unseen."""
    while True:
        try:
            await part.alerting.deliver_forever()
        except Exception as exc:  # noqa: BLE001 - one partition's delivery never ends us
            kind, file, line = raising_line(exc)
            log.error(  # noqa: TRY400 - no traceback: its text may quote a URL
                "alert_delivery_failed", partition=part.key, error=kind, where=f"{file}:{line}"
            )
            await asyncio.sleep(1.0)
