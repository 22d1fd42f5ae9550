"""The tick road: at aligned instants the engine's clock moves and tick handlers (detectors,
alert rules) evaluate. Live mode drives it from the wall clock, replay from event time, through
the same ``TickRoad`` so both produce the same alert timeline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from monitor.engine.engine import Engine
from monitor.stats import DaemonStats

TickHandler = Callable[[float], None]


class TickRoad:
    def __init__(
        self, engine: Engine, interval: float, handlers: Sequence[TickHandler] = ()
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.handlers = list(handlers)
        self._next: float | None = None

    def tick(self, now: float) -> None:
        self.engine.advance(now)
        for handler in self.handlers:
            handler(now)

    def catch_up(self, until: float, *, inclusive: bool) -> None:
        """Run every aligned tick before ``until`` (or at it, when inclusive), in order."""
        if self._next is None:
            self._next = math.ceil(until / self.interval) * self.interval
        while self._next < until or (inclusive and self._next == until):
            self.tick(self._next)
            self._next += self.interval

    def before_event(self, ts: float) -> None:
        """Replay: ticks strictly before an event's time run before the event is applied."""
        if self._next is None or self._next < ts:
            self.catch_up(ts, inclusive=False)


async def run_wall_clock(
    road: TickRoad,
    stats: DaemonStats,
    clock: Callable[[], float] = time.time,
    speed: float = 1.0,
) -> None:
    """Live mode: tick on aligned instants of ``clock``; records how late each wake-up was.
    ``clock`` runs ``speed`` times faster than the wall clock (the sped-up simulator)."""
    interval = road.interval
    while True:
        now = clock()
        due = math.floor(now / interval) * interval + interval
        await asyncio.sleep((due - now) / speed)
        woke = clock()
        stats.loop_lag_seconds = max(0.0, (woke - due) / speed)
        road.tick(woke)
