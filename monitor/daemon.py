"""The one supervisor: an ``AsyncExitStack`` opens everything, one ``TaskGroup`` runs it.

Tasks: one consumer per source, the wall clock tick, alert delivery, and the signal watcher.
SIGTERM/SIGINT ends the task group; each source bounds its own close (a few seconds).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import structlog

from alerts.runtime import Alerting
from monitor.clock import TickRoad, run_wall_clock
from monitor.cluster.durable import Durability
from monitor.config import Settings
from monitor.consume import consume
from monitor.deadletter import DeadLetterSink, JsonlDeadLetters, MemoryDeadLetters
from monitor.http import MetricsServer
from monitor.pipeline import Pipeline
from monitor.registry import build_registry
from monitor.reload import Reloader
from monitor.sources.base import Source
from monitor.sources.build import configured_sources, dead_letter_sink
from monitor.sources.simulator import SimulatorSource
from monitor.stats import DaemonStats


class _Shutdown(Exception):  # noqa: N818 - a signal, not an error
    """Raised by the signal watcher to end the task group."""


async def _watch_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    raise _Shutdown


async def _flush_dead_letters(sink: JsonlDeadLetters) -> None:
    while True:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(sink.flush)


def live_clock(sources: list[Source], settings: Settings) -> tuple[Callable[[], float], float]:
    """"Now" in live mode: the wall clock. Only when the built-in simulator is the one source
    and runs faster than real time is "now" its simulated time, so waits, deadlines and alert
    ``for`` durations stay consistent in a sped-up demo."""
    speed = settings.sources.simulator.speed
    if len(sources) == 1 and isinstance(sources[0], SimulatorSource) and speed != 1:
        return sources[0].simulated_now, speed
    return time.time, 1.0


async def run_daemon(  # noqa: PLR0915, C901 - one supervisor, read top to bottom
    settings: Settings, listen: str | None = None, config_path: Path | None = None
) -> int:
    if settings.cluster.enabled:  # opt-in: one engine per Kafka partition, see scale-out.md
        from monitor.cluster.node import run_cluster  # noqa: PLC0415 - only in cluster mode

        return await run_cluster(settings, listen)
    log = structlog.get_logger("support_monitor.daemon")
    durable = Durability(settings.state, settings)
    engine = await durable.load_engine()  # a snapshot when state.dir has one, else empty
    stats = DaemonStats()
    alerting = Alerting(settings.detectors, settings.alerts, settings.notifiers, engine, stats)
    durable.attach_detectors(alerting)  # detector baselines from the snapshot; saved with it
    road = TickRoad(engine, settings.exporter.tick_seconds, alerting.handlers)
    registry = build_registry(engine, stats, alerting)
    sources = configured_sources(settings, stats)
    durable.attach(sources)  # Kafka resumes at the snapshot's offsets
    address = listen or settings.exporter.listen
    stop = asyncio.Event()
    ticking = asyncio.Event()

    def ready() -> bool:
        return ticking.is_set() and all(stats.source_up.get(s.name, True) for s in sources)

    async def run_clock(clock: Callable[[], float], speed: float) -> None:
        # No deadline is decided before the backlog since the snapshot is applied: those
        # events would arrive after their deadlines and count breaches that never were.
        await durable.wait_caught_up()
        road.tick(clock())
        ticking.set()
        await run_wall_clock(road, stats, clock, speed)

    async with AsyncExitStack() as stack:
        sink: DeadLetterSink
        file_sink: JsonlDeadLetters | None = None
        if settings.dead_letter.path is not None:
            file_sink = stack.enter_context(JsonlDeadLetters(settings.dead_letter.path))
            sink = file_sink
        else:
            sink = MemoryDeadLetters()
            log.warning("dead_letters_in_memory", hint="set dead_letter.path to keep them")
        server = await stack.enter_async_context(MetricsServer(registry, address, ready))
        await stack.enter_async_context(alerting)  # restores alert state before any tick
        reloader = None
        if config_path is not None:
            reloader = Reloader(config_path, settings, engine, alerting)
            await reloader.start()
        for source in sources:
            await stack.enter_async_context(source)
        clock, speed = live_clock(sources, settings)
        pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=clock)
        log.info(
            "daemon_started",
            listen=f"{address.rpartition(':')[0]}:{server.port}",
            sources=[s.name for s in sources],
            channels=list(settings.channels),
            state_dir=None if settings.state.dir is None else str(settings.state.dir),
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                for source in sources:
                    tasks.create_task(
                        consume(source, pipeline, dead_letter_sink(source, sink)),
                        name=f"source:{source.name}",
                    )
                tasks.create_task(run_clock(clock, speed), name="clock")
                tasks.create_task(alerting.deliver_forever(), name="alerts:deliver")
                tasks.create_task(durable.snapshot_forever(), name="state:snapshot")
                if file_sink is not None:
                    tasks.create_task(_flush_dead_letters(file_sink), name="dead-letters:flush")
                tasks.create_task(_watch_signals(stop), name="signals")
                if reloader is not None:
                    tasks.create_task(reloader.run_forever(), name="config:reload")
        except* _Shutdown:
            # Consumers stopped between two events; the sources (still open) commit on close.
            await durable.save("shutdown")
            log.info("daemon_stopped", reason="signal")
    return 0
