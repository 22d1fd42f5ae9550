"""The one supervisor: an ``AsyncExitStack`` opens everything, one ``TaskGroup`` runs it.

Named tasks: one consumer per source (``source:<name>``), the wall clock (``clock``), alert
delivery (``alerts:deliver``), snapshots (``state:snapshot``), dead-letter flushing when a file
sink is set (``dead-letters:flush``), the signal watcher (``signals``) and, with a config file,
its reloader (``config:reload``).
SIGTERM/SIGINT ends the task group; each source bounds its own close (a few seconds). The
handlers are installed before anything opens, so a signal during start-up is not lost: the task
group ends as soon as it starts. A stop always exits 0 with one ``daemon_stopped`` line, even
when a task or a source's close fails on the way out (the line names those failures).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import structlog

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.clock import TickRoad, run_wall_clock
from support_monitor.monitor.cluster.durable import Durability
from support_monitor.monitor.config import Settings
from support_monitor.monitor.console import Timeline
from support_monitor.monitor.console.setup import open_console
from support_monitor.monitor.consume import consume
from support_monitor.monitor.http import MetricsServer
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.registry import build_registry
from support_monitor.monitor.reload import single_engine
from support_monitor.monitor.sources.base import Source
from support_monitor.monitor.sources.build import configured_sources, dead_letter_sink
from support_monitor.monitor.sources.simulator import SimulatorSource
from support_monitor.monitor.stats import DaemonStats
from support_monitor.monitor.supervise import (
    Shutdown,
    open_dead_letters,
    open_reloader,
    start_housekeeping,
)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` while the block runs (instead of killing the process)."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    # `support-monitor run` blocks them until now: one that came during start-up arrives here.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    try:
        yield
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def live_clock(sources: list[Source], settings: Settings) -> tuple[Callable[[], float], float]:
    """ "Now" in live mode: the wall clock. Only when the built-in simulator is the one source
    and runs faster than real time is "now" its simulated time, so waits, deadlines and alert
    ``for`` durations stay consistent in a sped-up demo."""
    speed = settings.sources.simulator.speed
    if len(sources) == 1 and isinstance(sources[0], SimulatorSource) and speed != 1:
        return sources[0].simulated_now, speed
    return time.time, 1.0


async def run_daemon(
    settings: Settings, listen: str | None = None, config_path: Path | None = None
) -> int:
    """The daemon until SIGTERM/SIGINT; 0 on a stop. A listener that cannot bind raises
    ``ListenError`` (``monitor.http``), whose message names the key and the problem."""
    if settings.cluster.enabled:  # opt-in: one engine per Kafka partition, see scale-out.md
        from support_monitor.monitor.cluster.supervisor import run_cluster  # noqa: PLC0415 - only in cluster mode

        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # it installs its own handlers
        return await run_cluster(settings, listen, config_path)
    stop = asyncio.Event()
    with _signals_set(stop):
        return await _run_single(settings, listen, config_path, stop)


async def _run_single(  # noqa: PLR0915 - one supervisor, read top to bottom
    settings: Settings, listen: str | None, config_path: Path | None, stop: asyncio.Event
) -> int:
    log = structlog.get_logger("support_monitor.daemon")
    durable = Durability(settings.state, settings)
    engine = await durable.load_engine()  # a snapshot when state.dir has one, else empty
    stats = DaemonStats()
    timeline = Timeline(settings.console.timeline_size)  # the console's recent alert changes
    alerting = Alerting(
        settings.detectors,
        settings.alerts,
        settings.notifiers,
        engine,
        stats,
        on_transition=timeline,
    )
    durable.attach_detectors(alerting)  # detector baselines from the snapshot; saved with it
    road = TickRoad(engine, settings.exporter.tick_seconds, alerting.handlers, stats=stats)
    registry = build_registry(engine, stats, alerting, process=True)
    sources = configured_sources(settings, stats)
    durable.attach(sources)  # Kafka resumes at the snapshot's offsets
    address = listen or settings.exporter.listen
    ticking = asyncio.Event()
    stopping = False
    task_errors: list[str] = []

    def ready() -> bool:
        # Not ready while a dead-letter sink cannot store: offsets are held back meanwhile.
        return (
            ticking.is_set()
            and not stats.dead_letter_sinks_failing
            and all(stats.source_up.get(s.name, True) for s in sources)
        )

    async def run_clock(clock: Callable[[], float], speed: float) -> None:
        # No deadline is decided before the backlog since the snapshot is applied: those
        # events would arrive after their deadlines and count breaches that never were.
        await durable.wait_caught_up()
        road.tick(clock())
        ticking.set()
        await run_wall_clock(road, stats, clock, speed)

    try:
        async with AsyncExitStack() as stack:
            sink, file_sink = open_dead_letters(stack, settings, stats)
            console = await open_console(stack, settings, engine, alerting, timeline)
            server = await stack.enter_async_context(
                MetricsServer(
                    registry,
                    address,
                    ready,
                    exporter=settings.exporter,
                    listen_key="--listen" if listen else "exporter.listen",
                    mounted=console,
                )
            )
            await stack.enter_async_context(alerting)  # restores alert state before any tick
            apply = single_engine(engine, alerting)
            reloader = await open_reloader(config_path, settings, apply)
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
                    start_housekeeping(tasks, stop, file_sink, reloader)
            except BaseExceptionGroup as group:
                shutdown, failed = group.split(Shutdown)
                if shutdown is None:
                    raise
                stopping = True
                # A task may fail instead of ending when cancelled (a client library that turns
                # the cancellation into its own error): named in the stop line, not a traceback.
                task_errors = [] if failed is None else [repr(exc) for exc in _leaves(failed)]
                # Consumers stopped between two events; the sources (still open) commit on close.
                await durable.save("shutdown")
    except (Exception, asyncio.CancelledError) as exc:
        current = asyncio.current_task()
        cancelled = current is not None and current.cancelling() > 0
        if not stopping or cancelled:
            raise
        # Closing a source (or the listener) failed after the stop: the stop still succeeds.
        task_errors.append(f"close: {exc!r}")
    fields = {"task_errors": task_errors} if task_errors else {}
    log.info("daemon_stopped", reason="signal", **fields)
    return 0
