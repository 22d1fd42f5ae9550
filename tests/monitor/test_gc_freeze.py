"""The daemon freezes its start-up heap out of the cyclic GC's reach (``freeze_heap``): full
collections stop walking it, a cycle frozen while alive waits for the next freeze (the
documented trade-off), and ``thaw_heap`` gives everything back to the collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import structlog.testing

from support_monitor.monitor.supervise import freeze_heap, thaw_heap


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
