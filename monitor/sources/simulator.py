"""The built-in contact-center simulator: a source, a generator and a JSON Lines writer.

A fresh install has no Kafka or MQTT to read, yet should show moving metrics and firing alerts at
once. The model itself (arrivals, agents and their states, patience, tickets, bot sessions,
surveys, sentiment, incidents) lives in :mod:`monitor.sources.sim_model`; this module paces it
against the wall clock or writes it to a file for ``support-monitor replay``. See
``docs/simulator.md``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from support_monitor.monitor.config import SimulatorSettings
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.pipeline import Delivery
from support_monitor.monitor.sources.sim_model import ContactCenter

_YIELD_EVERY = 256
"""In a long batch (high speed), give the event loop a turn after this many deliveries."""
_EARLY = 0.001
"""Wall seconds: an event due sooner than this goes out now, so no sleep is ever shorter."""


def generate(
    channels: Mapping[str, ChannelSettings], sim: SimulatorSettings, start: float
) -> Iterator[tuple[float, bytes]]:
    """Endless ``(event time, JSON bytes)`` in non-decreasing time; the same for the same seed."""
    return ContactCenter(channels, sim, start).run()


def write_jsonl(
    path: Path,
    channels: Mapping[str, ChannelSettings],
    sim: SimulatorSettings,
    start: float,
    duration: float,
) -> int:
    """Write the events of ``[start, start + duration)`` as JSON Lines; return how many."""
    end = start + duration
    count = 0
    with path.open("wb") as out:
        for ts, raw in generate(channels, sim, start):
            if ts >= end:
                break
            out.write(raw + b"\n")
            count += 1
    return count


class SimulatorSource:
    """Delivers the simulation in real time, ``sim.speed`` simulated seconds per wall second.

    Simulated time starts at the wall clock when the source is entered, or at the time given to
    :meth:`resume_after` when that is later. Event times are simulated times, so at ``speed`` 1
    they match the wall clock and at higher speeds they run ahead of it.
    ``clock`` and ``sleep`` are injectable so tests can run hours of traffic in milliseconds.
    """

    name = "simulator"

    def __init__(
        self,
        channels: Mapping[str, ChannelSettings],
        sim: SimulatorSettings,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._channels = channels
        self._sim = sim
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._wall_start = 0.0
        self._resume = -math.inf

    def resume_after(self, clock: float) -> None:
        """Start simulated time no earlier than ``clock`` (a restored engine's clock): after a
        restart of a sped-up simulator the snapshot's clock is ahead of the wall clock by
        (speed - 1) x the earlier run, and a simulation restarted at the wall clock would
        deliver events the engine's clock has passed, with no tick until it caught up."""
        if math.isfinite(clock):
            self._resume = clock

    async def __aenter__(self) -> Self:
        self._wall_start = self._clock()
        self._start = max(self._wall_start, self._resume)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._start = None

    def simulated_now(self) -> float:
        """Simulated time corresponding to the wall clock now."""
        assert self._start is not None, "use SimulatorSource as an async context manager"
        return self._start + (self._clock() - self._wall_start) * self._sim.speed

    async def events(self) -> AsyncIterator[Delivery]:
        assert self._start is not None, "use SimulatorSource as an async context manager"
        stream = generate(self._channels, self._sim, self._start)
        due, raw = next(stream)
        n = 0
        speed = self._sim.speed
        while True:
            wait = (due - self.simulated_now()) / speed
            if wait > _EARLY:
                await self._sleep(wait)
                continue
            # Everything due by now goes out as one batch, then one sleep until the next event.
            horizon = self.simulated_now() + _EARLY * speed
            while due <= horizon:
                n += 1
                yield Delivery(raw, f"sim:{n}")
                if n % _YIELD_EVERY == 0:
                    await self._sleep(0)
                due, raw = next(stream)
