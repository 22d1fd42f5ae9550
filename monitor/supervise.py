"""Pieces the supervisors share (``monitor.daemon`` for one node, ``monitor.cluster.node`` for a
cluster replica): the shutdown signal that ends a task group and the dead-letter flush task."""

from __future__ import annotations

import asyncio

from support_monitor.monitor.deadletter import JsonlDeadLetters

__all__ = ["Shutdown", "flush_dead_letters", "watch_signals"]


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
