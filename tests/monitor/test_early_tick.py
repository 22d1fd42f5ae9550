"""The live wall clock ticks soon after an applied event (``exporter.early_tick_seconds``)
instead of waiting for the next aligned instant, and early ticks stay spaced out.

The aligned interval here is 1,000 s, so every tick seen in these tests is an early one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable

from support_monitor.monitor.clock import EARLY_TICK_SHARE, run_wall_clock
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats

FAR = 1000.0  # the aligned interval: never reached while a test runs


@contextlib.asynccontextmanager
async def clock(
    applied: asyncio.Event, early: float | None, tick: Callable[[float], None]
) -> AsyncIterator[None]:
    task = asyncio.create_task(
        run_wall_clock(tick, FAR, DaemonStats(), applied=applied, early=early), name="clock"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for_ticks(ticks: list[float], count: int) -> None:
    async with asyncio.timeout(10):
        while len(ticks) < count:
            await asyncio.sleep(0.005)


async def test_an_applied_event_is_judged_before_the_next_aligned_tick() -> None:
    settings = parse_settings({})
    assert settings.exporter.early_tick_seconds == 0.1  # the documented default
    engine = Engine(settings)
    pipeline = Pipeline(engine, DaemonStats(), event_clock=False)
    ticks: list[float] = []
    async with clock(pipeline.applied, settings.exporter.early_tick_seconds, ticks.append):
        await asyncio.sleep(0.05)
        assert ticks == []  # nothing applied: only the aligned tick, 1,000 s away
        now = time.time()
        raw = (
            b'{"event_id":"e1","type":"contact.queued","ts":"'
            + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)).encode()
            + b'","channel":"voice","contact_id":"c1"}'
        )
        assert pipeline.process("test", Delivery(raw, "t:1")) is None
        await wait_for_ticks(ticks, 1)
    assert ticks[0] >= now


async def test_a_rejected_event_does_not_tick() -> None:
    engine = Engine(parse_settings({}))
    pipeline = Pipeline(engine, DaemonStats(), event_clock=False)
    ticks: list[float] = []
    async with clock(pipeline.applied, 0.01, ticks.append):
        assert pipeline.process("test", Delivery(b"not json", "t:1")) is not None
        await asyncio.sleep(0.2)
    assert ticks == []


async def test_without_early_ticks_events_wait_for_the_aligned_tick() -> None:
    applied = asyncio.Event()
    ticks: list[float] = []
    async with clock(applied, None, ticks.append):
        applied.set()
        await asyncio.sleep(0.2)
    assert ticks == []


async def test_early_ticks_are_spaced_by_the_setting() -> None:
    applied = asyncio.Event()
    starts: list[float] = []

    def tick(_now: float) -> None:
        starts.append(time.monotonic())

    early = 0.05
    async with clock(applied, early, tick):
        for _ in range(4):  # a busy stream: an event at every chance
            applied.set()
            count = len(starts) + 1
            await wait_for_ticks(starts, count)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    assert all(gap >= early - 0.001 for gap in gaps), gaps  # the loop clock may fire 1 ns early


async def test_a_slow_tick_spaces_early_ticks_by_its_cost() -> None:
    cost = 0.02
    applied = asyncio.Event()
    starts: list[float] = []

    def tick(_now: float) -> None:
        starts.append(time.monotonic())
        time.sleep(cost)  # a tick that blocks the loop this long

    async with clock(applied, 0.001, tick):
        for _ in range(3):
            applied.set()
            await wait_for_ticks(starts, len(starts) + 1)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= cost / EARLY_TICK_SHARE - 0.001 for gap in gaps), gaps
