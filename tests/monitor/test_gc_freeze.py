"""The daemon freezes its start-up heap out of the cyclic GC's reach (``freeze_heap``): full
collections stop walking it, a cycle frozen while alive waits for the next freeze (the
documented trade-off), and ``thaw_heap`` gives everything back to the collector. While the
daemon runs, ``HeapKeeper`` freezes what survived each full collection and thaws everything
once every ``thaw_every``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator

import pytest
import structlog.testing
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from support_monitor.monitor.exporter import render
from support_monitor.monitor.supervise import HeapKeeper, freeze_heap, thaw_heap


class Node:
    """A GC-tracked object that can sit in a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _tracked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def thawed() -> Iterator[None]:
    thaw_heap()
    try:
        yield
    finally:
        thaw_heap()  # the rest of the test run collects as usual


@pytest.mark.usefixtures("thawed")
def test_frozen_objects_are_not_walked_and_new_ones_are() -> None:
    before = Node()
    assert _tracked(before)
    with structlog.testing.capture_logs() as logs:
        freeze_heap("start")
    assert gc.get_freeze_count() > 0
    assert not _tracked(before)  # in the permanent generation: no collection walks it
    after = Node()
    assert _tracked(after)
    assert [(e["event"], e["reason"]) for e in logs] == [("gc_frozen", "start")]
    assert logs[0]["objects"] > 1000  # the interpreter and everything imported so far
    thaw_heap()
    assert gc.get_freeze_count() == 0
    assert _tracked(before)


@pytest.mark.usefixtures("thawed")
def test_a_frozen_cycle_is_reclaimed_by_the_next_freeze() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    freeze_heap("start")
    del a, b  # garbage now, but frozen: a full collection does not see it
    gc.collect()
    assert gone() is not None
    freeze_heap("config_reload")  # unfreezes, collects, freezes what is left
    assert gone() is None


async def _keep(keeper: HeapKeeper, then: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.create_task(keeper.run(), name="heap:keeper")
    try:
        await then()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.usefixtures("thawed")
async def test_the_keeper_freezes_what_survived_a_full_collection() -> None:
    freeze_heap("start")
    state = Node()  # long-lived state made after start-up
    keeper = HeapKeeper(check_every=0.01, thaw_every=3600)

    async def run() -> None:
        await asyncio.sleep(0.05)
        assert _tracked(state)  # no full collection yet: nothing frozen
        gc.collect()  # a full collection; ``state`` survives it
        await asyncio.sleep(0.05)
        assert not _tracked(state)  # frozen within a check
        assert keeper.full is False
        fresh = Node()
        await asyncio.sleep(0.05)
        assert _tracked(fresh)  # no full collection since: the keeper left it alone

    callbacks = list(gc.callbacks)
    await _keep(keeper, run)
    assert gc.callbacks == callbacks  # its callback is removed when the task ends


@pytest.mark.usefixtures("thawed")
async def test_the_keeper_thaws_and_collects_every_thaw_every() -> None:
    freeze_heap("start")
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc.collect()
    gc.freeze()  # as the keeper does after that collection
    del a, b  # a garbage cycle among frozen objects
    gc.collect()
    assert gone() is not None
    keeper = HeapKeeper(check_every=0.01, thaw_every=0.05)

    async def run() -> None:
        with structlog.testing.capture_logs() as logs:
            await asyncio.sleep(0.2)
        assert ("gc_frozen", "periodic") in [(e["event"], e.get("reason")) for e in logs]

    await _keep(keeper, run)
    assert gone() is None


class _Seen(Collector):
    """Records whether the cyclic GC was enabled while a scrape collected it."""

    def __init__(self) -> None:
        self.enabled: list[bool] = []

    def collect(self) -> list[Metric]:
        self.enabled.append(gc.isenabled())
        return []


@pytest.mark.parametrize("enabled", [True, False])
def test_a_scrape_pauses_the_collector_and_leaves_it_as_it_found_it(enabled: bool) -> None:
    seen = _Seen()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(seen)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        render(registry)
        assert seen.enabled == [False]
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
