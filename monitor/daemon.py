"""``support-monitor run``: one engine under the one supervisor (``monitor.supervise``).

:class:`SingleEngine` is what the supervisor serves without ``cluster.enabled``. Its named tasks:
one consumer per source (``source:<name>``), the wall clock (``clock``), alert delivery
(``alerts:deliver``) and snapshots (``state:snapshot``); the supervisor adds dead-letter flushing
(with a file sink), the signal watcher (``signals``), the heap keeper (``heap:keeper``) and,
with a config file, its reloader (``config:reload``). With ``cluster.enabled`` the same
supervisor serves a cluster replica (``monitor.cluster.supervisor``). SIGTERM/SIGINT end the task
group (a page on its way gets 5 s to finish, ``alerts.runtime.SHUTDOWN_SEND_GRACE``); each step
of a source's close is bounded (a Kafka source's commit, stop and dead-letter flush each by
``close_timeout``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import structlog

from support_monitor.monitor.clock import run_wall_clock
from support_monitor.monitor.cluster.durable import Durability
from support_monitor.monitor.config import Settings
from support_monitor.monitor.console import Timeline
from support_monitor.monitor.console.setup import open_console
from support_monitor.monitor.consume import HELD_DRAIN_SECONDS, consume
from support_monitor.monitor.deadletter import DeadLetterSink, JsonlDeadLetters
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.http import Mounted
from support_monitor.monitor.registry import build_registry
from support_monitor.monitor.reload import single_engine
from support_monitor.monitor.road import build_road
from support_monitor.monitor.sources.base import Source
from support_monitor.monitor.sources.build import configured_sources, dead_letter_sink
from support_monitor.monitor.sources.simulator import SimulatorSource
from support_monitor.monitor.stats import DaemonStats
from support_monitor.monitor.supervise import signals_set, supervise

__all__ = [
    "SingleEngine",
    "letters_stored",
    "live_clock",
    "quiet_library_futures",
    "run_daemon",
]


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
    asyncio.get_running_loop().set_exception_handler(quiet_library_futures)
    stop, hangup = asyncio.Event(), asyncio.Event()
    with signals_set(stop, hangup):
        if settings.cluster.enabled:  # opt-in: one engine per Kafka partition, see scale-out.md
            from support_monitor.monitor.cluster.supervisor import ClusterReplica  # noqa: PLC0415 - only in cluster mode

            replica = ClusterReplica(settings)
            return await supervise(replica, settings, listen, config_path, stop=stop, hangup=hangup)
        served = await SingleEngine.load(settings)
        return await supervise(served, settings, listen, config_path, stop=stop, hangup=hangup)


LIBRARY_MODULES = ("aiokafka.", "aiomqtt.", "paho.")
"""The broker clients whose internal futures may hold an error nobody reads."""


def quiet_library_futures(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's handler of errors nobody retrieved. A broker client's internal future
    that failed with the client's own error (a batch's drain waiter in aiokafka, a pending
    MQTT operation at a disconnect) stands for a failure the source or sink has already
    logged once and handles (retry, reconnect): it is logged at debug level
    (``library_future_error``), not as an error with a traceback. Anything else goes to the
    loop's default handler (logged through structlog)."""
    error = context.get("exception")
    if (
        "future" in context
        and isinstance(error, Exception)
        and type(error).__module__.startswith(LIBRARY_MODULES)
    ):
        structlog.get_logger("support_monitor.daemon").debug(
            "library_future_error", error=repr(error)
        )
        return
    loop.default_exception_handler(context)


async def letters_stored(sink: DeadLetterSink, stats: DaemonStats) -> bool:
    """Store the file sink's buffer (one attempt, off the loop); whether every dead letter is
    stored (no sink failing, nothing left in the buffer)."""
    if isinstance(sink, JsonlDeadLetters) and (sink.pending or stats.dead_letter_sinks_failing):
        await asyncio.to_thread(sink.flush)  # a sink that is down is reopened, even if empty
    pending = isinstance(sink, JsonlDeadLetters) and sink.pending > 0
    return not pending and not stats.dead_letter_sinks_failing


class SingleEngine:
    """One engine fed by every configured source: the pipeline, the wall-clock tick road, the
    detectors and alert rules, notification delivery, snapshots and the console."""

    log_name = "support_monitor.daemon"
    started_event = "daemon_started"
    stopped_event = "daemon_stopped"

    def __init__(self, settings: Settings, durable: Durability, engine: Engine) -> None:
        self.settings = settings
        self.durable = durable
        self.engine = engine
        self.stats = DaemonStats()
        self.timeline = Timeline(settings.console.timeline_size)  # recent alert changes
        self.sources = configured_sources(settings, self.stats)
        self.clock, self.speed = live_clock(self.sources, settings)
        if self.speed != 1.0:  # the simulator's time is "now": it goes on from the snapshot's
            for source in self.sources:
                if isinstance(source, SimulatorSource):
                    source.resume_after(engine.now)
        road = build_road(
            settings,
            engine,
            self.stats,
            replay=False,
            on_transition=self.timeline,
            wall_clock=self.clock,
        )
        self.alerting, self.road, self.pipeline = road.alerting, road.ticks, road.pipeline
        durable.attach_detectors(self.alerting)  # detector baselines from the snapshot
        durable.count_failures(self.stats)
        self.registry = build_registry(engine, self.stats, self.alerting, process=True)
        durable.attach(self.sources)  # Kafka resumes at the snapshot's offsets
        self.reconfigure = single_engine(engine, self.alerting)
        self.ticking = asyncio.Event()
        self.sinks: dict[str, DeadLetterSink] = {}
        """Each source's dead-letter sink, by source name (set when the tasks start)."""

    @classmethod
    async def load(cls, settings: Settings) -> SingleEngine:
        """With the engine of the snapshot in ``state.dir`` when there is one, else empty."""
        durable = Durability(settings.state, settings)
        return cls(settings, durable, await durable.load_engine())

    def ready(self) -> bool:
        # Not ready while a dead-letter sink cannot store: offsets are held back meanwhile.
        return (
            self.ticking.is_set()
            and not self.stats.dead_letter_sinks_failing
            and all(self.stats.source_up.get(s.name, True) for s in self.sources)
        )

    def not_ready_reason(self) -> str | None:
        return None

    async def open_console(self, stack: AsyncExitStack) -> Mounted | None:
        return await open_console(stack, self.settings, self.engine, self.alerting, self.timeline)

    async def open(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.alerting)  # restores alert state before any tick
        for source in self.sources:
            await stack.enter_async_context(source)

    def start(self, tasks: asyncio.TaskGroup, sink: DeadLetterSink) -> None:
        self.durable.letters_stored = functools.partial(letters_stored, sink, self.stats)
        for source in self.sources:
            self.sinks[source.name] = letters = dead_letter_sink(source, sink)
            tasks.create_task(
                consume(source, self.pipeline, letters, drain_every=HELD_DRAIN_SECONDS),
                name=f"source:{source.name}",
            )
        tasks.create_task(self._run_clock(), name="clock")
        tasks.create_task(self.alerting.deliver_forever(), name="alerts:deliver")
        tasks.create_task(self.durable.snapshot_forever(), name="state:snapshot")

    async def save(self, reason: str) -> None:
        # Consumers stopped between two events; the sources (still open) commit on close.
        if not self.durable.enabled:
            # Held outcomes were acknowledged when they were held, and no snapshot keeps them:
            # judged now, so that each is applied or dead-lettered, not lost with the process.
            self.engine.settle_held()
            for name, letters in self.sinks.items():
                for letter in self.pipeline.take_deferred(name):
                    await letters.write(letter)
        await self.durable.save(reason)

    def started_fields(self) -> dict[str, object]:
        state = self.settings.state.dir
        return {
            "sources": [s.name for s in self.sources],
            "channels": list(self.settings.channels),
            "state_dir": None if state is None else str(state),
        }

    async def _run_clock(self) -> None:
        # No deadline is decided before the backlog since the snapshot is applied: those
        # events would arrive after their deadlines and count breaches that never were.
        await self.durable.wait_caught_up()
        self.road.tick(self.clock())
        self.ticking.set()
        await run_wall_clock(
            self.road.tick,
            self.road.interval,
            self.stats,
            self.clock,
            self.speed,
            applied=self.pipeline.applied,
            early=self.settings.exporter.early_tick_seconds,
        )
