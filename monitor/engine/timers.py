"""The engine's deadline timers: a min-heap of ``(when, kind, key)`` entries whose spent entries
are dropped a few at a time.

An entry is pushed for every deadline and at-risk instant of an open item and is never removed
when its item moves on (an answer, a solve, a new deadline): popping it later is a no-op. So the
heap also holds spent entries, and once it has grown past twice what the last clean-up kept,
the spent ones are dropped, and so are copies of an entry kept already. Doing that in one pass
stalled a tick for about half a second at 100,000 open tickets (336,000 entries), so the
clean-up is spread over the ticks (and the events):
the full heap is set aside as it is (still a heap) and each :meth:`TimerHeap.tidy` moves
``TIDY_STEP`` entries from its tail (what is left of a heap's array without its tail is still a
heap) into the new heap, dropping the spent ones. Until it is empty, due entries are popped
from whichever of the two heaps holds the smaller one, so they come out in the order one heap
would give.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Container, Iterable, Iterator

__all__ = ["MIN_TIMER_LIMIT", "TIDY_STEP", "TimerHeap"]

Entry = tuple[float, int, str]

MIN_TIMER_LIMIT = 4096
"""Heap entries below which spent entries are never looked for."""
TIDY_STEP = 1024
"""Entries of the set-aside heap examined per :meth:`TimerHeap.tidy` (one per decision, about
1.5 ms at most)."""


class TimerHeap:
    """Deadline timers in ``(when, kind, key)`` order; ``spent(when, kind, key)`` says whether an
    entry can never take effect again (its item moved on), so it may be dropped."""

    __slots__ = ("_ceiling", "_heap", "_inclusive", "_kept", "_limit", "_old", "_spent")

    def __init__(self, spent: Callable[[float, int, str], bool], inclusive: Container[int]) -> None:
        self._spent = spent
        self._inclusive = inclusive  # kinds due at an equal watermark, not only past it
        self._heap: list[Entry] = []
        self._old: list[Entry] = []  # the heap set aside while its spent entries are dropped
        self._limit = MIN_TIMER_LIMIT
        self._ceiling = 0  # entries held at which a clean-up under way is finished at once
        self._kept: set[Entry] = set()  # the entries a clean-up under way has kept so far

    def __len__(self) -> int:
        return len(self._heap) + len(self._old)

    def entries(self) -> list[Entry]:
        """Every entry held, spent ones included, in no particular order."""
        return [*self._heap, *self._old]

    def push(self, when: float, kind: int, key: str) -> None:
        heapq.heappush(self._heap, (when, kind, key))

    def clear(self) -> None:
        self._heap = []
        self._old = []

    def extend(self, entries: Iterable[Entry]) -> None:
        """Add ``entries`` and restore heap order in one pass (the end of a re-arm, whose
        entries are all live): the next clean-up waits until the heap has doubled."""
        self._heap.extend(entries)
        heapq.heapify(self._heap)
        self._limit = max(MIN_TIMER_LIMIT, 2 * len(self))

    def first(self) -> float:
        """The earliest entry's instant (``inf`` when none is held)."""
        heap, old = self._heap, self._old
        if old:
            return min(old[0][0], heap[0][0]) if heap else old[0][0]
        return heap[0][0] if heap else math.inf

    def pop_due(self, watermark: float) -> Iterator[Entry]:
        """Pop, in order, the entries due at ``watermark``: before it, or at it for the inclusive
        kinds. Entries pushed while this runs are popped too when they are due."""
        heap, old, inclusive = self._heap, self._old, self._inclusive
        while True:
            if old and (not heap or old[0] < heap[0]):
                source = old
            elif heap:
                source = heap
            else:
                return
            when, kind, _ = source[0]
            if when > watermark or (when == watermark and kind not in inclusive):
                return
            entry = heapq.heappop(source)
            if source is old and not old:  # the set-aside heap ran out: the clean-up is over
                self._finish()
            yield entry

    def tidy(self) -> int:
        """One step of the clean-up (nothing when it is not due); returns the entries dropped."""
        old = self._old
        if not old:
            if len(self._heap) <= self._limit:
                return 0
            self._old, self._heap = self._heap, []
            old = self._old
            self._ceiling = 2 * len(old)
            self._kept = set()
        elif len(self) > self._ceiling:
            return self.compact()  # pushes outran the steps: finish now (bounds the heap)
        step = min(len(old), TIDY_STEP)
        chunk = old[-step:]
        del old[-step:]
        return step - self._keep(chunk)

    def compact(self) -> int:
        """Drop every spent entry now, in one pass; returns how many it dropped."""
        entries = self._heap + self._old
        spent = self._spent
        self._heap = kept = list({e for e in entries if not spent(*e)})  # a copy once
        self._old = []
        self._kept = set()
        heapq.heapify(kept)
        self._limit = max(MIN_TIMER_LIMIT, 2 * len(kept))
        return len(entries) - len(kept)

    def _keep(self, chunk: list[Entry]) -> int:
        """Push the live entries of ``chunk`` into the heap, each once (a clock paused and
        resumed at one instant pushes the same entry again); the clean-up ends with the last."""
        heap, spent, kept = self._heap, self._spent, self._kept
        before = len(kept)
        for entry in chunk:
            if entry not in kept and not spent(*entry):
                heapq.heappush(heap, entry)
                kept.add(entry)
        moved = len(kept) - before
        if not self._old:
            self._finish()
        return moved

    def _finish(self) -> None:
        """The clean-up is over: the next one starts once the heap holds twice what this one
        kept. (From the heap's size then, the entries pushed meanwhile, spent or not, would
        raise the limit at every clean-up under a steady stream of pushes.)"""
        self._limit = max(MIN_TIMER_LIMIT, 2 * len(self._kept))
        self._kept = set()
