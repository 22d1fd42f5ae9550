"""Single-node durability: the engine state survives restarts, with the offsets it reflects.

On start the snapshot in ``state.dir`` is loaded; Kafka sources are told to resume from its
offsets (so events after it are applied once and events before it never again, whatever offsets
the group committed). A snapshot that cannot be used is kept aside as ``*.refused-<time>`` and the
state is rebuilt by reading every partition from the beginning. The wall clock (deadlines,
detectors, alert rules) starts only once the sources have caught up with what was in the broker
at start, so outcomes that happened while the daemon was down land before any deadline is
decided. Snapshots are written every ``state.snapshot_interval`` and on shutdown.

Detector state (complaint baselines, threshold hysteresis, backlog histories) is in the same
snapshot, taken in the same synchronous step as the engine. The detectors are built after the
engine (by ``Alerting``), so they are attached separately: ``attach_detectors`` restores the
loaded state into the suite and makes every later snapshot carry it. It takes the object that
*holds* the suite, not the suite, because a config reload replaces ``alerting.suite``.

Wiring (``monitor/daemon.py``)::

    durable = Durability(settings.state, settings)
    engine = await durable.load_engine()
    alerting = Alerting(...)
    durable.attach_detectors(alerting)  # restores the detector state loaded with the engine
    ...
    durable.attach(sources)
    ...  # the clock task: await durable.wait_caught_up(); road.tick(time.time()); then as before
    ...  # tasks += durable.snapshot_forever(); on shutdown: await durable.save("shutdown")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from support_monitor.monitor.cluster.settings import StateSettings
from support_monitor.monitor.config import Settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.snapshot import Offsets, SnapshotError
from support_monitor.monitor.errors import raising_line
from support_monitor.monitor.sources.kafka import KafkaSource
from support_monitor.monitor.sources.mqtt import MqttSource
from support_monitor.monitor.stats import DaemonStats, StoreHealth

if TYPE_CHECKING:
    from support_monitor.detectors.suite import DetectorSuite

log = structlog.get_logger("support_monitor.state")


class HoldsSuite(Protocol):
    """What ``attach_detectors`` needs (``alerts.runtime.Alerting``): the current suite."""

    @property
    def suite(self) -> DetectorSuite: ...


def _set_aside(path: Path) -> str:
    """Rename a refused snapshot so it is kept for inspection and not tried again."""
    target = path.with_name(f"{path.name}.refused-{time.strftime('%Y%m%dT%H%M%S')}")
    path.replace(target)
    return str(target)


MQTT_QUIET = 0.5
"""Seconds without a message after which an MQTT session's held messages count as delivered."""


async def _mqtt_backlog_in(source: MqttSource, start: float) -> None:
    """Wait until ``source`` received its session's held messages, at most its
    ``catch_up_seconds`` after ``start`` (``time.perf_counter``). MQTT marks no end of the held
    messages: a half second without any is taken as the end, so a topic busier than that is
    waited for the whole bound."""
    limit = start + source.settings.catch_up_seconds
    while not source.backlog_in(MQTT_QUIET):
        left = limit - time.perf_counter()
        if left <= 0:
            log.info(
                "mqtt_catch_up_bounded",
                source=source.name,
                connected=source.connected_once,
                seconds=source.settings.catch_up_seconds,
                action="the clock starts; an outcome held by the broker and applied later may "
                "find its contact breached",
            )
            return
        await asyncio.sleep(min(0.05, left))


UNASSIGNED_WAIT = 10.0
"""Without ``state.dir``: seconds the clock waits for a Kafka source's first assignment."""


async def _kafka_backlog_in(source: KafkaSource, start: float) -> None:
    """Without state: wait until ``source`` applied the backlog its partitions held at the first
    assignment. A group that assigns nothing within :data:`UNASSIGNED_WAIT` of ``start`` (the
    broker is down) is not waited for: the other sources' events need the clock, and there is no
    restored contact whose deadline the backlog could change."""
    while not source.caught_up.is_set():
        if not source.assigned_once and time.perf_counter() - start >= UNASSIGNED_WAIT:
            log.info(
                "kafka_catch_up_bounded",
                source=source.name,
                seconds=UNASSIGNED_WAIT,
                action="the clock starts; no partition was assigned yet",
            )
            return
        await asyncio.sleep(0.05)


class Durability:
    """Loads, resumes and saves the engine state; inert when ``state.dir`` is not set."""

    def __init__(self, state: StateSettings, settings: Settings) -> None:
        self.state = state
        self._health = StoreHealth("snapshot")
        self.settings = settings
        self.engine: Engine | None = None
        self.kafka: list[KafkaSource] = []
        self.mqtt: list[MqttSource] = []
        """Waited for at start (their sessions' held messages), with or without ``state.dir``."""
        self.loaded_offsets: Offsets = {}
        self.refused: str | None = None
        """Why the snapshot found at start was refused (``None``: loaded, or there was none)."""
        self.loaded_detectors: dict[str, Any] | None = None
        """Detector state of the loaded snapshot (``None``: none, or an older snapshot)."""
        self._detectors: HoldsSuite | None = None
        self._lock = asyncio.Lock()
        self.letters_stored: Callable[[], Awaitable[bool]] | None = None
        """Stores the buffered dead letters and says whether all are stored; while not, no
        snapshot is written: its offsets would pass records whose letters could then be lost
        (a restart resumes after them, so the broker never redelivers them)."""

    @property
    def enabled(self) -> bool:
        return self.state.dir is not None

    async def load_engine(self) -> Engine:
        """The engine from the snapshot, or a new one (no snapshot, or refused: rebuild)."""
        path = self.state.snapshot_path
        engine: Engine | None = None
        if path is not None:
            start = time.perf_counter()
            try:
                loaded, self.loaded_offsets, snap = await asyncio.to_thread(
                    snapshot.load_full, path, self.settings
                )
            except SnapshotError as exc:
                if await asyncio.to_thread(path.exists):
                    self.refused = str(exc)
                    kept = await asyncio.to_thread(_set_aside, path)
                    log.error(  # noqa: TRY400 - the reason is the message; no traceback
                        "snapshot_refused",
                        reason=str(exc),
                        kept_as=kept,
                        action="starting from an empty state (Kafka sources read their "
                        "topics from the earliest offsets)",
                    )
                else:
                    log.info(
                        "snapshot_absent",
                        path=str(path),
                        action="starting from an empty state (Kafka sources read their "
                        "topics from the earliest offsets)",
                    )
            else:
                engine = loaded
                self.loaded_detectors = snap.detectors
                log.info(
                    "snapshot_loaded",
                    path=str(path),
                    seconds=round(time.perf_counter() - start, 3),
                    open_contacts=len(loaded.contacts),
                    tickets=len(loaded.tickets),
                    detector_state=snap.detectors is not None,
                    offsets={f"{t}/{p}": o for (t, p), o in sorted(self.loaded_offsets.items())},
                )
        self.engine = engine or Engine(self.settings)
        return self.engine

    def attach_detectors(self, holder: HoldsSuite) -> None:
        """Restore the loaded detector state into ``holder.suite`` (per detector; the state of
        a detector whose settings changed is dropped and logged) and include the then current
        suite's state in every later snapshot. Call before the first tick."""
        if not self.enabled:
            return
        self._detectors = holder
        if self.loaded_detectors is not None:
            holder.suite.restore_state(self.loaded_detectors)
            self.loaded_detectors = None

    def attach(self, sources: Sequence[object]) -> None:
        """Resume every Kafka source from the loaded offsets (call before entering them). The
        clock waits (:meth:`wait_caught_up`) for what each source held at start in any case:
        the Kafka backlog up to the ends at the first assignment, the MQTT sessions' held
        messages."""
        self.mqtt = [source for source in sources if isinstance(source, MqttSource)]
        if not self.enabled:
            # No state to resume: the clock still waits for the backlog the group left.
            self.kafka = [source for source in sources if isinstance(source, KafkaSource)]
            return
        for source in sources:
            if isinstance(source, KafkaSource):
                topics = set(source.settings.topics)
                source.resume_from(
                    {tp: off for tp, off in self.loaded_offsets.items() if tp[0] in topics}
                )
                self.kafka.append(source)
            else:
                log.warning(
                    "state_source_without_offsets",
                    source=getattr(source, "name", "?"),
                    hint=(
                        "no offsets to resume from: after a crash, its messages applied since "
                        "the last snapshot are missing (docs/reliability.md)"
                    ),
                )

    @property
    def caught_up(self) -> bool:
        return all(source.caught_up.is_set() for source in self.kafka)

    async def wait_caught_up(self) -> None:
        """Returns once every Kafka source read what its partitions held at assignment and
        every MQTT source received what the broker held for its session (bounded)."""
        if not self.kafka and not self.mqtt:
            return
        start = time.perf_counter()
        for source in self.kafka:
            if self.enabled:
                await source.caught_up.wait()
            else:
                await _kafka_backlog_in(source, start)
        for mqtt in self.mqtt:
            await _mqtt_backlog_in(mqtt, start)
        log.info("state_caught_up", seconds=round(time.perf_counter() - start, 3))

    def count_failures(self, stats: DaemonStats) -> None:
        """Count failed snapshot writes in ``stats`` (``store`` = ``snapshot``,
        ``support_monitor_store_failures_total``, ``support_monitor_store_failing``) once the
        daemon's counters exist; a snapshot refused at start counts as one (already logged:
        ``snapshot_refused``)."""
        if self.enabled:
            self._health = StoreHealth("snapshot", stats)
            self._health.watch()
            if self.refused is not None:
                self._health.failed("snapshot_refused", None)

    def offsets(self) -> Offsets:
        merged: Offsets = {}
        for source in self.kafka:
            merged.update(source.state_offsets())
        return merged

    async def save(self, reason: str) -> None:
        """Write a snapshot now (state and offsets read between two events, on the loop)."""
        path = self.state.snapshot_path
        if path is None or self.engine is None:
            return
        async with self._lock:
            if self.letters_stored is not None and not await self.letters_stored():
                log.warning(
                    "snapshot_deferred",
                    reason=reason,
                    why="dead letters not stored yet: the last snapshot and its offsets stay",
                )
                return
            start = time.perf_counter()
            try:
                detectors = (
                    None if self._detectors is None else self._detectors.suite.export_state()
                )
                size = await snapshot.save_async(self.engine, self.offsets(), path, detectors)
            except OSError as exc:
                self._health.failed("snapshot_write_failed", exc, path=str(path), reason=reason)
                return
            except Exception as exc:  # noqa: BLE001 - a defect: counted, the daemon goes on
                kind, file, line = raising_line(exc)
                log.error(  # noqa: TRY400 - no traceback: its text may quote an id
                    "snapshot_failed", reason=reason, error=kind, where=f"{file}:{line}"
                )
                self._health.failed("snapshot_failed", None)
                return
            self._health.ok()
            (log.info if reason != "interval" else log.debug)(
                "snapshot_written",
                reason=reason,
                bytes=size,
                seconds=round(time.perf_counter() - start, 3),
                open_contacts=len(self.engine.contacts),
                tickets=len(self.engine.tickets),
            )

    async def snapshot_forever(self) -> None:
        """One task of the daemon: a snapshot every ``state.snapshot_interval`` seconds."""
        if not self.enabled:
            return
        while True:
            await asyncio.sleep(self.state.snapshot_interval)
            await self.save("interval")
