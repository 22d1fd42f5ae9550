"""A fixed-bucket histogram kept as plain counts; the exporter turns it into cumulative buckets.

The engine owns the numbers; prometheus_client objects are not touched per event (see
``monitor/exporter.py`` for why).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable


class Histogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le is inclusive).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((_le(bound), running))
        out.append(("+Inf", self.count))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


def bucket_bounds(defaults: Iterable[float], extra: Iterable[float | None]) -> tuple[float, ...]:
    """Sorted union of default bounds and SLA thresholds (so ``le=T`` is always a bucket)."""
    bounds = {float(b) for b in defaults}
    bounds.update(float(b) for b in extra if b is not None)
    return tuple(sorted(bounds))


WAIT_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
HANDLE_BUCKETS = (30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600, 7200)
FIRST_RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)
RESOLUTION_BUCKETS = (900, 3600, 14400, 28800, 86400, 172800, 259200, 604800, 1209600)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
