"""Poisson CUSUM on one channel's complaint stream, against its own hourly baseline.

The window test of ``complaints.py`` sees sharp spikes; a spike of 4x the usual rate spread
over half an hour never fills one 5-minute window enough. This CUSUM accumulates the evidence:

    S <- max(0, S + n ln(r) - (r - 1) x rate x dt)      for n new complaints over dt seconds

(the log-likelihood ratio of "the rate is r x usual" against "usual"), active while
S >= threshold and capped at threshold + ln(r), so it stops soon after the spike does.

``rate`` comes from an hourly baseline that learns slowly on purpose (and errs high: a slot's
mean plus one standard error): one sample per complete
hour (its complaint count) into its hour-of-week slot (EWMA weight 0.5, so the same hour last
week counts most), an hour-of-day slot (weight 0.3, the fallback for an hour-of-week slot not
seen yet) and, for an hour of the day not seen yet either, the larger of an all-hours mean
(weight 0.05; before 3 samples blended with the prior) and a recent-hours mean (weight 0.5), so
the first morning is not judged against the night. An hour
in which the CUSUM was active is not learned by the slots, so a spike, also in the first week,
is never taken for the usual level, unless ``relearn_hours`` hours in a row were: then the level
has shifted for good and those hours are learned together. The state is two fixed-size tables
per channel (168 + 24 slots) and at most ``relearn_hours`` held-back hour counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

HOUR = 3600.0
WEEK_WEIGHT, DAY_WEIGHT, GLOBAL_WEIGHT, RECENT_WEIGHT = 0.5, 0.3, 0.05, 0.5
GLOBAL_WARMUP = 3
MIN_RATE_PER_HOUR = 1.0
"""The usual rate is never taken below ``min_rate_per_hour`` (default this): an hour learned as
empty would otherwise make any single event infinitely unlikely."""
WEEK_SAMPLES, DAY_SAMPLES = 3, 5
"""Effective sample counts of the slot EWMAs (w / (2 - w) of the variance: 1/3 and 0.18)."""


def _ewma(cell: list[float], x: float, weight: float) -> None:
    """[mean, n]: running mean for the first 1/weight samples, then EWMA."""
    cell[1] += 1
    cell[0] += max(weight, 1.0 / cell[1]) * (x - cell[0])


class RateCusum:
    """The CUSUM and hourly baseline of one channel; ``slot_of(t)`` is the hour of the week."""

    __slots__ = (
        "active",
        "day",
        "flagged",
        "hour",
        "hour_start",
        "last",
        "log_ratio",
        "min_rate",
        "prior",
        "ratio",
        "recent",
        "relearn_hours",
        "release",
        "seen",
        "skipped",
        "stat",
        "threshold",
        "total",
        "week",
    )

    def __init__(
        self,
        ratio: float,
        threshold: float,
        prior_per_hour: float,
        relearn_hours: int,
        *,
        release: float | None = None,
        min_rate_per_hour: float = MIN_RATE_PER_HOUR,
    ) -> None:
        self.ratio = ratio
        self.log_ratio = math.log(ratio)
        self.threshold = threshold
        self.release = threshold if release is None else release
        self.min_rate = min_rate_per_hour
        """Hysteresis: once active, active until the statistic falls below this."""
        self.active = False
        self.prior = prior_per_hour
        self.relearn_hours = relearn_hours
        self.week: dict[int, list[float]] = {}
        self.day: dict[int, list[float]] = {}
        self.total = [0.0, 0.0]
        self.recent = [0.0, 0.0]
        self.stat = 0.0
        self.last = math.nan
        self.seen = -1.0
        self.hour = -1
        """The hour (epoch hours) being counted; -1 before the first tick."""
        self.hour_start = -1.0
        """Cumulative complaints at the start of ``hour``; -1 when not seen from its start."""
        self.flagged = False
        self.skipped: list[tuple[int, float]] = []
        """The flagged hours in a row not learned yet (at most ``relearn_hours``)."""

    def ready(self, slot: int) -> bool:
        """Whether the usual rate of ``slot`` is known: with a prior always; without one
        (``prior_per_hour`` 0) once the same hour of the day was learned."""
        return self.prior > 0 or slot in self.week or slot % 24 in self.day

    def per_hour(self, slot: int) -> float:
        """The usual complaints per hour in an hour-of-week slot: the larger of its hour-of-week
        and hour-of-day means (a Monday's hour of the day still remembers the weekend, a
        Saturday's the weekdays), plus one standard error sqrt(mean / n) (n: the slots'
        effective sample counts), so an hour learned once from a quiet count does not make the
        usual rate look low."""
        week = self.week.get(slot)
        day = self.day.get(slot % 24)
        if week is not None or day is not None:
            means = [c[0] for c in (week, day) if c is not None]
            n = min(week[1], WEEK_SAMPLES) if week is not None else 0.0
            n += min(day[1], DAY_SAMPLES) if day is not None else 0.0
            mean = max(means)
            return max(mean + math.sqrt(mean / n), self.min_rate)
        mean, n = self.total
        if n < GLOBAL_WARMUP:
            mean = (n * mean + (GLOBAL_WARMUP - n) * self.prior) / GLOBAL_WARMUP
        return max(mean, self.recent[0], self.min_rate)

    def step(self, now: float, cumulative: float, slot_of: Callable[[float], int]) -> bool:
        """Advance to ``now`` with the channel's cumulative count; whether active.

        Every hour boundary passed since the last step is closed in turn (the statistic falls
        to it at that hour's rate, then the hour is learned), so one long step over a quiet gap
        learns what a step per second would. New events count in the first stretch (the hour
        of the last step), together with its decay."""
        if math.isnan(self.last):  # the first step only starts the count
            self.last, self.seen = now, cumulative
            self.hour = math.floor(now / HOUR)
            return self.active
        if now <= self.last or cumulative < self.seen:  # time or the count went back
            self.last, self.seen = max(now, self.last), cumulative
            return self.active
        events = cumulative - self.seen  # counted in the first stretch, with its decay
        while (self.hour + 1) * HOUR <= now:
            boundary = (self.hour + 1) * HOUR
            self._advance(boundary, events, slot_of)
            self.seen += events
            events = 0.0
            self._close_hour(slot_of)
        self._advance(now, events, slot_of)
        self.seen = cumulative
        return self.active

    def _advance(self, until: float, events: float, slot_of: Callable[[float], int]) -> None:
        """The statistic from ``last`` to ``until`` with ``events`` new ones at ``until``."""
        slot = slot_of(self.last)
        if self.ready(slot):
            rate = self.per_hour(slot) / HOUR
            stat = self.stat + events * self.log_ratio
            stat -= (self.ratio - 1.0) * rate * (until - self.last)
            self.stat = min(max(stat, 0.0), self.threshold + self.log_ratio)
            self.active = self.stat >= (self.release if self.active else self.threshold)
            self.flagged = self.flagged or self.active
        self.last = until

    def _learn(self, slot: int, count: float) -> None:
        _ewma(self.week.setdefault(slot, [0.0, 0.0]), count, WEEK_WEIGHT)
        _ewma(self.day.setdefault(slot % 24, [0.0, 0.0]), count, DAY_WEIGHT)
        _ewma(self.total, count, GLOBAL_WEIGHT)
        _ewma(self.recent, count, RECENT_WEIGHT)

    def _close_hour(self, slot_of: Callable[[float], int]) -> None:
        """Learn the hour that ends now (when it was seen from its start); start the next."""
        if self.hour_start >= 0:
            count = self.seen - self.hour_start
            slot = slot_of(self.hour * HOUR)
            if not self.flagged:
                self.skipped = []  # those were a spike: never learned
                self._learn(slot, count)
            elif len(self.skipped) >= self.relearn_hours:
                # flagged this many hours in a row: the level has shifted; learn them all
                for old_slot, old_count in [*self.skipped, (slot, count)]:
                    self._learn(int(old_slot), old_count)
                self.skipped = []
                self.stat = 0.0  # its evidence was against the old level
                self.active = False
            else:
                self.skipped.append((slot, count))
        self.hour_start = self.seen
        self.hour += 1
        self.flagged = self.active

    def dump(self) -> list[Any]:
        return [
            self.stat,
            self.last,
            self.seen,
            self.hour,
            self.hour_start,
            self.flagged,
            self.active,
            [list(x) for x in self.skipped],
            [[k, *v] for k, v in sorted(self.week.items())],
            [[k, *v] for k, v in sorted(self.day.items())],
            list(self.total),
            list(self.recent),
        ]

    def load(self, data: list[Any]) -> None:
        stat, last, seen, hour, start, flagged, active, skipped, week, day, total, recent = data
        self.stat, self.last, self.seen = float(stat), float(last), float(seen)
        self.hour, self.hour_start = int(hour), float(start)
        self.flagged, self.active = bool(flagged), bool(active)
        self.skipped = [(int(slot), float(count)) for slot, count in skipped]
        self.week = {int(k): [float(m), float(n)] for k, m, n in week}
        self.day = {int(k): [float(m), float(n)] for k, m, n in day}
        self.total = [float(total[0]), float(total[1])]
        self.recent = [float(recent[0]), float(recent[1])]
