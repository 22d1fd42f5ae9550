"""Bounded memory of event ids, so a redelivered event (same ``event_id``) is applied once.

Bounded twice: at most ``max_ids`` ids, and none older (by event time) than ``horizon`` behind
the clock. Ids are kept as 64-bit hashes, grouped in one-second buckets in arrival order, which
costs about 70 bytes an id instead of a string and a tuple each.
"""

from __future__ import annotations

from collections import deque


class Deduplicator:
    __slots__ = ("_buckets", "_current", "_current_second", "_horizon", "_max_ids", "_seen")

    def __init__(self, max_ids: int, horizon: float) -> None:
        self._max_ids = max_ids
        self._horizon = horizon
        self._seen: set[int] = set()
        self._buckets: deque[tuple[int, list[int]]] = deque()
        self._current: list[int] = []  # the newest bucket's ids (appended per event)
        self._current_second = -1

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, event_id: str) -> bool:
        return hash(event_id) in self._seen

    def add(self, event_id: str, ts: float) -> None:
        key = hash(event_id)
        seen = self._seen
        seen.add(key)
        second = int(ts)
        if second <= self._current_second:
            self._current.append(key)  # late ids join the newest bucket (forgotten a bit later)
        else:
            self._current_second = second
            self._current = [key]
            self._buckets.append((second, self._current))
        if len(seen) > self._max_ids:
            self._evict_oldest_bucket()

    def expire(self, now: float) -> None:
        """Forget ids whose bucket is older than the horizon behind ``now``."""
        cutoff = now - self._horizon
        buckets = self._buckets
        while buckets and buckets[0][0] < cutoff:
            self._evict_oldest_bucket()

    def _evict_oldest_bucket(self) -> None:
        _, keys = self._buckets.popleft()
        self._seen.difference_update(keys)
        if not self._buckets:
            self._current_second = -1
