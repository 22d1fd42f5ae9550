"""The one supervisor, and the pieces of it: an ``AsyncExitStack`` opens everything, one
``TaskGroup`` of named tasks runs it, and SIGTERM/SIGINT end it. What it serves is a
:class:`Served`: one engine (``monitor.daemon.SingleEngine``) or a cluster replica's partitions
(``monitor.cluster.supervisor.ClusterReplica``); both get the same dead-letter sink, listener,
config reload, housekeeping tasks and stop handling from :func:`supervise`.

The signal handlers are installed before anything opens, so a signal during start-up is not
lost: the task group ends as soon as it starts. A stop always exits 0 with one stopped line,
even when a task or a close fails on the way out (the line names those failures). Once
everything is open, the heap is frozen out of the cyclic GC's reach (:func:`freeze_heap`),
again after each config reload and after each full collection (:class:`HeapKeeper`), and
thawed when the supervisor ends.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Protocol

import structlog
from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.config import Settings
from support_monitor.monitor.deadletter import DeadLetterSink, JsonlDeadLetters, MemoryDeadLetters
from support_monitor.monitor.http import MetricsServer, Mounted
from support_monitor.monitor.reload import Reloader
from support_monitor.monitor.stats import DaemonStats

__all__ = [
    "SIGNALS",
    "HeapKeeper",
    "Served",
    "Shutdown",
    "flush_dead_letters",
    "freeze_heap",
    "open_dead_letters",
    "open_reloader",
    "refuse_hangups",
    "signals_set",
    "start_housekeeping",
    "supervise",
    "thaw_heap",
    "watch_signals",
]

SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that stop the daemon; SIGHUP reloads its config (:func:`signals_set`)."""


class Shutdown(Exception):  # noqa: N818 - a signal that ends the task group, not an error
    """Raised by :func:`watch_signals` once ``stop`` is set, to end the supervisor's task group."""


async def watch_signals(stop: asyncio.Event) -> None:
    """The ``signals`` task: waits for ``stop`` (set by SIGTERM/SIGINT), then ends the group."""
    await stop.wait()
    raise Shutdown


async def flush_dead_letters(sink: JsonlDeadLetters) -> None:
    """The ``dead-letters:flush`` task: stores the file sink's buffer once a second (and
    reopens a sink that is down, also with nothing to store)."""
    while True:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(sink.flush)


def open_dead_letters(
    stack: AsyncExitStack, settings: Settings, stats: DaemonStats
) -> tuple[DeadLetterSink, JsonlDeadLetters | None]:
    """The supervisor's dead-letter sink, closed with ``stack``: the file at
    ``dead_letter.path`` (also returned, for its flush task), else memory. Memory is said once
    in the log when a broker source without a dead-letter topic will write to it, since those
    letters are lost on a stop (the simulator writes only valid events)."""
    if settings.dead_letter.path is not None:
        file_sink = stack.enter_context(JsonlDeadLetters(Path(settings.dead_letter.path), stats))
        return file_sink, file_sink
    sources = settings.sources
    brokers = [broker for broker in (sources.kafka, sources.mqtt) if broker is not None]
    if any(broker.dead_letter_topic is None for broker in brokers):
        structlog.get_logger("support_monitor.daemon").warning(
            "dead_letters_in_memory", hint="set dead_letter.path to keep them"
        )
    return MemoryDeadLetters(stats=stats), None


async def open_reloader(
    config_path: Path | None,
    settings: Settings,
    apply: Callable[[Settings], None],
    hangup: asyncio.Event,
) -> Reloader | None:
    """The config reloader of a supervisor started with ``--config`` (``None`` without one),
    reloading also when ``hangup`` is set (SIGHUP)."""
    if config_path is None:
        return None
    reloader = Reloader(config_path, settings, apply, hangup)
    await reloader.start()
    return reloader


def start_housekeeping(
    tasks: asyncio.TaskGroup,
    stop: asyncio.Event,
    file_sink: JsonlDeadLetters | None,
    reloader: Reloader | None,
    hangup: asyncio.Event,
) -> None:
    """The named tasks every supervisor runs beside its own: ``dead-letters:flush`` (with a
    file sink), ``signals``, ``heap:keeper`` and ``config:reload`` (with a config file; without
    one, ``config:no-reload`` answers a SIGHUP with a warning)."""
    if file_sink is not None:
        tasks.create_task(flush_dead_letters(file_sink), name="dead-letters:flush")
    tasks.create_task(watch_signals(stop), name="signals")
    tasks.create_task(HeapKeeper().run(), name="heap:keeper")
    if reloader is not None:
        tasks.create_task(reloader.run_forever(), name="config:reload")
    else:
        tasks.create_task(refuse_hangups(hangup), name="config:no-reload")


async def refuse_hangups(hangup: asyncio.Event) -> None:
    """The ``config:no-reload`` task of a daemon started without ``--config``: a SIGHUP has
    nothing to reload; each is said (``config_reload_unavailable``) and the daemon goes on."""
    log = structlog.get_logger("support_monitor.reload")
    while True:
        await hangup.wait()
        hangup.clear()
        log.warning(
            "config_reload_unavailable",
            trigger="sighup",
            reason="started without --config: the built-in defaults and the environment "
            "are read only at start; restart the daemon to change them",
        )


def freeze_heap(reason: str) -> None:
    """Collect once, then move every object alive into the cyclic GC's permanent generation
    (``gc.freeze``), which no later collection walks.

    What the daemon builds at start-up lives as long as the process: the settings tree, the
    engine and its containers (with the state restored from a snapshot), the detectors, alert
    rules, the registry and the imported modules. Without this, every full (generation 2)
    collection walks all of it, a pause of tens of milliseconds at 100 channels x 10 queues
    that lands in whatever the loop is doing (a tick, a scrape, a batch of events). Frozen, a
    full collection walks only what was made since (docs/benchmarks-history.md, "/metrics at 100
    channels x 10 queues").

    The trade-off: a frozen object that later becomes part of a garbage cycle is not reclaimed
    until the next call (objects freed by reference counting, which is most of them, are freed
    as usual). That is at most what was alive at the freeze, once; a config reload, which
    replaces the detectors and rules, calls this again (``gc.unfreeze`` first, so that
    collection reclaims the replaced objects' cycles), and so does :class:`HeapKeeper` every
    ``thaw_every``. The collection here is one full pause each time; ``gc_frozen`` logs how long
    it took."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    structlog.get_logger("support_monitor.daemon").info(
        "gc_frozen",
        reason=reason,
        objects=gc.get_freeze_count(),
        seconds=round(time.perf_counter() - started, 3),
    )


class HeapKeeper:
    """The ``heap:keeper`` task: keeps full (generation 2) collections short while the daemon
    runs, after :func:`freeze_heap` at start-up.

    What survives a full collection is mostly long-lived state made since start-up: window
    buckets, sketches, the containers of open contacts and tickets. Within ``check_every`` of a
    full collection the keeper freezes the heap again (``gc.freeze``, no collection of its own),
    so the next full collection walks only what was made after it: at 100 channels x 10
    queues a full collection took 9-35 ms before, well under 1 ms after
    (docs/benchmarks-history.md, "/metrics at 100 channels x 10 queues"). The trade-off of
    :func:`freeze_heap` then covers those objects too: a frozen object that later becomes part
    of a garbage cycle is not reclaimed until the heap is thawed. So every ``thaw_every``
    seconds the keeper calls :func:`freeze_heap` (thaw, one full collection over everything,
    freeze): such cycles are reclaimed at most that late, at the cost of one full pause then
    (logged as ``gc_frozen``, reason ``periodic``)."""

    def __init__(self, check_every: float = 1.0, thaw_every: float = 3600.0) -> None:
        self.check_every = check_every
        self.thaw_every = thaw_every
        self.full = False
        """A full collection ran since the last freeze."""

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self.full = True

    async def run(self) -> None:
        gc.callbacks.append(self._seen)
        try:
            thawed = time.monotonic()
            while True:
                await asyncio.sleep(self.check_every)
                if time.monotonic() - thawed >= self.thaw_every:
                    freeze_heap("periodic")
                    thawed = time.monotonic()
                elif self.full:
                    gc.freeze()
                self.full = False
        finally:
            gc.callbacks.remove(self._seen)


def thaw_heap() -> None:
    """Undo :func:`freeze_heap` when a supervisor ends (``gc.unfreeze``): a process that goes
    on after the daemon (a test, an embedding program) collects those objects as usual."""
    gc.unfreeze()


@contextmanager
def signals_set(stop: asyncio.Event, hangup: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` and SIGHUP sets ``hangup`` while the block runs (instead of
    killing the process; the reloader, or ``config:no-reload``, answers ``hangup``)."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hangup.set)
    # `support-monitor run` blocks them until now: one that came during start-up arrives here.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {*SIGNALS, signal.SIGHUP})
    try:
        yield
    finally:
        for sig in (*SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(sig)


class Served(Protocol):
    """What :func:`supervise` runs."""

    log_name: str
    """The logger of its start and stop lines (``support_monitor.daemon``, ``...cluster``)."""
    started_event: str
    stopped_event: str
    stats: DaemonStats
    registry: CollectorRegistry

    def ready(self) -> bool: ...
    def not_ready_reason(self) -> str | None: ...
    async def open_console(self, stack: AsyncExitStack) -> Mounted | None:
        """The console to mount on the listener (closed by ``stack``), or none."""

    async def open(self, stack: AsyncExitStack) -> None:
        """Enter what it runs (alert state, sources, partitions) into ``stack``, after the
        listener is up."""

    def reconfigure(self, settings: Settings) -> None:
        """Apply a reloaded config (``monitor.reload.Reloader``)."""

    def start(self, tasks: asyncio.TaskGroup, sink: DeadLetterSink) -> None:
        """Create its named tasks (consume, clock, alert delivery, snapshots)."""

    async def save(self, reason: str) -> None:
        """Keep its state on the way out (consumers have stopped; sources still open)."""

    def started_fields(self) -> dict[str, object]:
        """The fields of the started line besides ``listen``."""


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def supervise(
    served: Served,
    settings: Settings,
    listen: str | None,
    config_path: Path | None,
    *,
    stop: asyncio.Event,
    hangup: asyncio.Event,
) -> int:
    """Run ``served`` until ``stop`` is set (SIGTERM/SIGINT: :func:`signals_set`); 0 on a stop.
    ``hangup`` (SIGHUP) asks for a config reload.
    Named tasks besides its own: ``dead-letters:flush`` (with a file sink), ``signals``,
    ``heap:keeper`` and ``config:reload`` (with a config file). A listener that cannot bind
    raises ``ListenError`` (``monitor.http``), whose message names the key and the problem."""
    log = structlog.get_logger(served.log_name)
    address = listen or settings.exporter.listen
    stopping = False
    task_errors: list[str] = []
    try:
        async with AsyncExitStack() as stack:
            sink, file_sink = open_dead_letters(stack, settings, served.stats)
            console = await served.open_console(stack)
            server = await stack.enter_async_context(
                MetricsServer(
                    served.registry,
                    address,
                    served.ready,
                    served.not_ready_reason,
                    exporter=settings.exporter,
                    listen_key="--listen" if listen else "exporter.listen",
                    mounted=console,
                )
            )
            await served.open(stack)

            def reconfigure(new: Settings) -> None:
                served.reconfigure(new)
                freeze_heap("config_reload")  # the replaced rules' cycles, then the new ones

            reloader = await open_reloader(config_path, settings, reconfigure, hangup)
            freeze_heap("start")  # what start-up built lives as long as the process
            log.info(
                served.started_event,
                listen=f"{address.rpartition(':')[0]}:{server.port}",
                **served.started_fields(),
            )
            try:
                async with asyncio.TaskGroup() as tasks:
                    served.start(tasks, sink)
                    start_housekeeping(tasks, stop, file_sink, reloader, hangup)
            except BaseExceptionGroup as group:
                shutdown, failed = group.split(Shutdown)
                if shutdown is None:
                    raise
                stopping = True
                # A task may fail instead of ending when cancelled (a client library that turns
                # the cancellation into its own error): named in the stop line, not a traceback.
                task_errors = [] if failed is None else [repr(exc) for exc in _leaves(failed)]
                await served.save("shutdown")
    except (Exception, asyncio.CancelledError) as exc:
        current = asyncio.current_task()
        cancelled = current is not None and current.cancelling() > 0
        if not stopping or cancelled:
            raise
        # Closing a source (or the listener) failed after the stop: the stop still succeeds.
        task_errors.append(f"close: {exc!r}")
    finally:
        thaw_heap()
    fields = {"task_errors": task_errors} if task_errors else {}
    log.info(served.stopped_event, reason="signal", **fields)
    return 0
