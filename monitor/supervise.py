"""Pieces the supervisors share (``monitor.daemon`` for one node, ``monitor.cluster.supervisor``
for a cluster replica): the dead-letter sink they open, the shutdown signal that ends a task
group, and the housekeeping tasks every supervisor runs beside its own (dead-letter flushing,
the signal watcher, config reload)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import structlog

from support_monitor.monitor.config import Settings
from support_monitor.monitor.deadletter import DeadLetterSink, JsonlDeadLetters, MemoryDeadLetters
from support_monitor.monitor.reload import Reloader
from support_monitor.monitor.stats import DaemonStats

__all__ = [
    "Shutdown",
    "flush_dead_letters",
    "open_dead_letters",
    "open_reloader",
    "start_housekeeping",
    "watch_signals",
]


class Shutdown(Exception):  # noqa: N818 - a signal that ends the task group, not an error
    """Raised by :func:`watch_signals` once ``stop`` is set, to end the supervisor's task group."""


async def watch_signals(stop: asyncio.Event) -> None:
    """The ``signals`` task: waits for ``stop`` (set by SIGTERM/SIGINT), then ends the group."""
    await stop.wait()
    raise Shutdown


async def flush_dead_letters(sink: JsonlDeadLetters) -> None:
    """The ``dead-letters:flush`` task: stores the file sink's buffer once a second."""
    while True:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(sink.flush)


def open_dead_letters(
    stack: AsyncExitStack, settings: Settings, stats: DaemonStats
) -> tuple[DeadLetterSink, JsonlDeadLetters | None]:
    """The supervisor's dead-letter sink, closed with ``stack``: the file at
    ``dead_letter.path`` (also returned, for its flush task), else memory (said once in the
    log, since those letters are lost on a stop)."""
    if settings.dead_letter.path is not None:
        file_sink = stack.enter_context(JsonlDeadLetters(Path(settings.dead_letter.path), stats))
        return file_sink, file_sink
    structlog.get_logger("support_monitor.daemon").warning(
        "dead_letters_in_memory", hint="set dead_letter.path to keep them"
    )
    return MemoryDeadLetters(), None


async def open_reloader(
    config_path: Path | None, settings: Settings, apply: Callable[[Settings], None]
) -> Reloader | None:
    """The config reloader of a supervisor started with ``--config`` (``None`` without one)."""
    if config_path is None:
        return None
    reloader = Reloader(config_path, settings, apply)
    await reloader.start()
    return reloader


def start_housekeeping(
    tasks: asyncio.TaskGroup,
    stop: asyncio.Event,
    file_sink: JsonlDeadLetters | None,
    reloader: Reloader | None,
) -> None:
    """The named tasks every supervisor runs beside its own: ``dead-letters:flush`` (with a
    file sink), ``signals`` and ``config:reload`` (with a config file)."""
    if file_sink is not None:
        tasks.create_task(flush_dead_letters(file_sink), name="dead-letters:flush")
    tasks.create_task(watch_signals(stop), name="signals")
    if reloader is not None:
        tasks.create_task(reloader.run_forever(), name="config:reload")
