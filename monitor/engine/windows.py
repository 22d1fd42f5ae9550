"""Sliding windows over event time, one-second buckets, exact running totals.

An outcome at time ``t`` belongs to the window ``(now - span, now]`` (left-open, as Prometheus 3
range selectors). Outcomes are added to their second's bucket and to every window total that
still holds that second; when the clock moves, buckets that slid out are subtracted. Totals are
therefore counts, never averages, and reading a windowed gauge costs O(1) (O(buckets) for the
wait quantiles). Resolution is one second: a sub-second timestamp counts by the second it is in.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort

from monitor.engine.sketch import add_into


class Agg:
    """Counts of one bucket or one window of a channel."""

    __slots__ = (
        "abandoned",
        "abandoned_short",
        "answered",
        "answered_in_sla",
        "breaches_answer",
        "breaches_first_response",
        "breaches_resolution",
        "complaints",
        "created",
        "queued",
        "ratings",
        "satisfied",
        "solved",
        "wait_ms",
        "waits",
    )

    def __init__(self) -> None:
        self.queued = 0
        self.answered = 0
        self.answered_in_sla = 0
        self.abandoned = 0
        self.abandoned_short = 0
        self.breaches_answer = 0
        self.breaches_first_response = 0
        self.breaches_resolution = 0
        self.created = 0
        self.solved = 0
        self.ratings = 0
        self.satisfied = 0
        self.complaints = 0
        self.wait_ms = 0  # sum of answered waits in integer ms: exact under add and subtract
        self.waits: dict[int, int] = {}

    _INTS = (
        "queued",
        "answered",
        "answered_in_sla",
        "abandoned",
        "abandoned_short",
        "breaches_answer",
        "breaches_first_response",
        "breaches_resolution",
        "created",
        "solved",
        "ratings",
        "satisfied",
        "complaints",
        "wait_ms",
    )

    def add(self, other: Agg, sign: int) -> None:
        for name in self._INTS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        add_into(self.waits, other.waits, sign)


class SlidingWindows:
    """Buckets and running totals of one channel for every configured window."""

    __slots__ = (
        "_buckets",
        "_cached",
        "_cached_key",
        "_cuts",
        "_keys",
        "_max_span",
        "names",
        "spans",
        "totals",
    )

    def __init__(self, spans: dict[str, float]) -> None:
        self.names = tuple(spans)
        self.spans = tuple(spans.values())
        self.totals = tuple(Agg() for _ in self.names)
        self._max_span = max(self.spans)
        self._cuts = [-math.inf] * len(self.names)  # buckets <= cut are out of that window
        self._buckets: dict[int, Agg] = {}
        self._keys: list[int] = []
        self._cached_key: float = math.nan  # targets() of the last second asked for
        self._cached: list[Agg] = []

    def total(self, window: str) -> Agg:
        return self.totals[self.names.index(window)]

    def targets(self, ts: float) -> list[Agg]:
        """The aggregates an outcome at ``ts`` must be added to (its bucket and open windows)."""
        key = math.floor(ts)
        if key == self._cached_key:
            return self._cached  # most outcomes land in the current second
        cuts = self._cuts
        if key <= min(cuts):
            return []  # slid out of every window already
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Agg()
            if not self._keys or key > self._keys[-1]:
                self._keys.append(key)
            else:
                insort(self._keys, key)
        out = [bucket]
        for i, total in enumerate(self.totals):
            if key > cuts[i]:
                out.append(total)
        self._cached_key, self._cached = key, out
        return out

    def advance(self, now: float) -> None:
        """Slide every window to end at ``now``; drop buckets no window holds any more."""
        self._cached_key = math.nan
        keys = self._keys
        for i, span in enumerate(self.spans):
            cut = math.floor(now - span)
            old = self._cuts[i]
            if cut <= old:
                continue
            total = self.totals[i]
            start = 0 if old == -math.inf else bisect_right(keys, old)
            for key in keys[start : bisect_right(keys, cut)]:
                total.add(self._buckets[key], -1)
            self._cuts[i] = cut
        oldest_cut = math.floor(now - self._max_span)
        drop = bisect_right(keys, oldest_cut)
        if drop:
            for key in keys[:drop]:
                del self._buckets[key]
            del keys[:drop]
