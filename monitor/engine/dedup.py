"""Bounded memory of event ids, so a redelivered event (same ``event_id``) is applied once.

Bounded twice: at most ``max_ids`` ids, and none older (by event time) than ``horizon`` behind
the clock. Ids are kept as 64-bit hashes, grouped in one-second buckets in arrival order, which
costs about 70 bytes an id instead of a string and a tuple each.

The hash is XXH3-64 of the id's UTF-8 bytes with a 64-bit seed (:func:`id_hash`). The seed is
drawn at random when a window starts empty and is saved with the window in a snapshot, so a
restored window (after a restart, or on another replica) hashes every id exactly as before, in
any process, unlike ``hash()``, which Python salts per process. Being random and private to the
state, the seed keeps producers from crafting ids whose hashes collide on purpose (to have a
real event dropped as a duplicate, or to slow the set down). Two distinct ids share a hash with
probability about n²/2⁶⁵ (n ids in the window: 3e-8 at a million ids); the later one would be
taken for a duplicate.
"""

from __future__ import annotations

import secrets
from collections import deque

import msgspec
from xxhash import xxh3_64_intdigest


def id_hash(event_id: str, seed: int) -> int:
    """The 64-bit hash the window keeps for ``event_id`` (0 <= value < 2**64) under ``seed``.

    ``surrogatepass``: an id holding a lone surrogate still hashes instead of raising."""
    return xxh3_64_intdigest(event_id.encode("utf-8", "surrogatepass"), seed)


class DedupState(msgspec.Struct):
    """What :meth:`Deduplicator.export` gives and :meth:`Deduplicator.restore` takes."""

    seed: int
    current_second: int
    """The newest bucket's second (-1: no bucket)."""
    buckets: list[tuple[int, list[int]]]
    """(second, id hashes) oldest first, each list in arrival order."""
    forgotten: list[int]
    """Hashes still listed in a bucket but no longer remembered (evicted with an older one, or
    :meth:`Deduplicator.forget`)."""


class Deduplicator:
    __slots__ = (
        "_buckets",
        "_current",
        "_current_second",
        "_horizon",
        "_max_ids",
        "_seen",
        "seed",
    )

    def __init__(self, max_ids: int, horizon: float, seed: int | None = None) -> None:
        self.seed = secrets.randbits(64) if seed is None else seed
        """The hash seed; a snapshot stores it and a restore sets it with the ids."""
        self._max_ids = max_ids
        self._horizon = horizon
        self._seen: set[int] = set()
        self._buckets: deque[tuple[int, list[int]]] = deque()
        self._current: list[int] = []  # the newest bucket's ids (appended per event)
        self._current_second = -1

    def __len__(self) -> int:
        return len(self._seen)

    def export(self) -> DedupState:
        """The whole window as plain data (lists copied)."""
        seen = self._seen
        buckets = [(second, list(keys)) for second, keys in self._buckets]
        forgotten = [k for _, keys in buckets for k in keys if k not in seen]
        return DedupState(self.seed, self._current_second, buckets, forgotten)

    def restore(self, state: DedupState) -> None:
        """Replace the window with ``state`` (as :meth:`export` gives it); its bucket lists are
        used as they are, not copied."""
        buckets: deque[tuple[int, list[int]]] = deque(
            (second, keys) for second, keys in state.buckets
        )
        seen = {k for _, keys in buckets for k in keys}
        seen.difference_update(state.forgotten)
        self.seed = state.seed
        self._buckets = buckets
        self._seen = seen
        self._current_second = state.current_second
        self._current = buckets[-1][1] if buckets else []

    def key(self, event_id: str) -> int:
        """The id's hash under this window's seed: computed once per event by the pipeline and
        passed to :meth:`seen_key` and :meth:`add_key`."""
        return id_hash(event_id, self.seed)

    def seen(self, event_id: str) -> bool:
        return id_hash(event_id, self.seed) in self._seen

    def seen_key(self, key: int) -> bool:
        return key in self._seen

    def add(self, event_id: str, ts: float) -> None:
        self.add_key(id_hash(event_id, self.seed), ts)

    def add_key(self, key: int, ts: float) -> None:
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

    def forget(self, event_id: str) -> None:
        """Stop remembering one id (an event held, then rejected). Its hash stays listed in its
        bucket until the bucket goes, which costs nothing more."""
        self._seen.discard(id_hash(event_id, self.seed))

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
