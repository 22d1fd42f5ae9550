"""Poisson CUSUM on one channel's complaint stream, against its own hourly baseline.

The window test of ``complaints.py`` sees sharp spikes; a spike of 4x the usual rate spread
over half an hour never fills one 5-minute window enough. This CUSUM accumulates the evidence:

    S <- max(0, S + n ln(r) - (r - 1) x rate x dt)      for n new complaints over dt seconds

(the log-likelihood ratio of "the rate is r x usual" against "usual"), active while
S >= threshold and capped at threshold + |ln(r)|, so it stops soon after the spike does. With
r < 1 the same statistic detects a drop (each event takes |ln(r)| off, quiet time adds
(1 - r) x rate x dt): the first-response drought of ``at_risk.py``.

``rate`` comes from an hourly baseline that learns slowly on purpose: one sample per complete
hour (its count) into its hour-of-week slot (EWMA weight 0.5, so the same hour last week counts
most), an hour-of-day slot (weight 0.3), an all-hours mean (weight 0.05) and a recent-hours mean
(weight 0.5). The usual rate of an hour is a seasonal product with the hour-of-week slot blended
in:

    factor   = (k + sum of the hour-of-week means within 3 h of the slot) / (k + sum of the
               same hours' hour-of-day means)        (hours where both are learned; k = 10)
    seasonal = day x factor
    rate     = seasonal + w x (week - seasonal) + margin x sqrt(w x mean / n_w)

with n_w, n_d the slots' effective sample counts (at most 3 and 5), mean = (n_w x week + n_d x
seasonal) / (n_w + n_d), and w = (bias + mean / n_d) / (bias + mean / n_d + mean / n_w), where
bias = max(0, (week - seasonal)^2 - mean / n_w - mean / n_d) is the part of the two estimates'
gap that Poisson noise does not explain: the hour-of-week slot counts the more, the further it
is from the seasonal estimate beyond noise. Without a week sample the rate is seasonal + margin
x sqrt(seasonal / n_d). The hour-of-day mean gives the shape of the day from every day's
samples, the factor scales it to this part of the week from the seven hours around it (a
Monday's hour of the day still remembers the weekend; the factor pools about seven hours of
counts instead of the one sample the hour-of-week slot has after a week), and ``margin``
standard errors make it err high where the tuned ratio is close to 1. An hour of the day not
learned yet is judged against the largest of the all-hours mean, the recent-hours mean and the
prior, so the first morning is judged neither against the night nor below the prior. An hour in
which the CUSUM was active is not learned by the slots, so a spike, also in the first week, is
never taken for the usual level, unless ``relearn_hours`` hours in a row were: then the level
has shifted for good and those hours are learned together. The state is two fixed-size tables
per channel (168 + 24 slots) and at most ``relearn_hours`` held-back hour counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

HOUR = 3600.0
WEEK_WEIGHT, DAY_WEIGHT, GLOBAL_WEIGHT, RECENT_WEIGHT = 0.5, 0.3, 0.05, 0.5
FACTOR_HOURS = 3
"""The factor of a slot pools the hour-of-week slots this many hours either side of it."""
FACTOR_PSEUDO_COUNT = 10.0
"""k of the day factor: both sums start at k, so a day with few counts learned so far keeps a
factor near 1 (a Gamma prior with mean 1 and shape k on the factor, in counts)."""
MIN_RATE_PER_HOUR = 1.0
"""The usual rate is never taken below ``min_rate_per_hour`` (default this): an hour learned as
empty would otherwise make any single event infinitely unlikely."""
WEEK_SAMPLES, DAY_SAMPLES = 3, 5
"""Effective sample counts of the slot EWMAs (w / (2 - w) of the variance: 1/3 and 0.18)."""


def hour_of_week(t: float) -> int:
    """Hour of the week in UTC (0 = Monday 00:00-01:00); 1970-01-01 was a Thursday."""
    return (math.floor(t / HOUR) + 72) % 168


def _ewma(cell: list[float], x: float, weight: float) -> None:
    """[mean, n]: running mean for the first 1/weight samples, then EWMA."""
    cell[1] += 1
    cell[0] += max(weight, 1.0 / cell[1]) * (x - cell[0])


class RateCusum:
    """The CUSUM and hourly baseline of one channel; ``slot_of(t)`` is the hour of the week."""

    __slots__ = (
        "active",
        "cached",
        "day",
        "flagged",
        "hour",
        "hour_start",
        "last",
        "log_ratio",
        "margin",
        "min_rate",
        "prior",
        "quiet_stays_zero",
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
        margin: float = 0.0,
    ) -> None:
        self.ratio = ratio
        self.log_ratio = math.log(ratio)
        self.threshold = threshold
        self.quiet_stays_zero = ratio > 1 and threshold > 0
        """A statistic at 0 with no new events stays 0 and inactive (``step``'s shortcut)."""
        self.release = threshold if release is None else release
        """Hysteresis: once active, active until the statistic falls below this."""
        self.min_rate = min_rate_per_hour
        self.margin = margin
        """Standard errors added to a learned usual rate (errs high)."""
        self.cached: tuple[int, float] = (-1, 0.0)
        """The last slot asked for and its usual rate; reset whenever something is learned."""
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
        """The usual complaints per hour in an hour-of-week slot (module docstring), at least
        ``min_rate_per_hour``; computed once per slot and learned hour."""
        cached_slot, value = self.cached
        if cached_slot != slot:
            value = max(self._estimate(slot), self.min_rate)
            self.cached = (slot, value)
        return value

    def _estimate(self, slot: int) -> float:
        week = self.week.get(slot)
        day = self.day.get(slot % 24)
        if week is None and day is None:
            return max(self.total[0], self.recent[0], self.prior)
        if day is None:  # not reached: a learned hour teaches both slots
            return week[0] if week is not None else self.prior
        n_day = min(day[1], DAY_SAMPLES)
        seasonal = day[0] * self.day_factor(slot)
        if week is None:
            return seasonal + self.margin * math.sqrt(seasonal / n_day)
        n_week = min(week[1], WEEK_SAMPLES)
        mean = (n_week * week[0] + n_day * seasonal) / (n_week + n_day)
        var_week, var_seasonal = mean / n_week, mean / n_day
        gap = week[0] - seasonal
        bias = max(0.0, gap * gap - var_week - var_seasonal)
        spread = bias + var_seasonal + var_week
        if spread <= 0:  # both means are 0
            return 0.0
        weight = (bias + var_seasonal) / spread
        return seasonal + weight * gap + self.margin * math.sqrt(weight * var_week)

    def day_factor(self, slot: int) -> float:
        """How this part of the week compares with the hour-of-day means: (k + the sum of the
        hour-of-week means of the slots within ``FACTOR_HOURS`` of ``slot``) / (k + the sum of
        the hour-of-day means of the same hours), over the slots where both are learned
        (k = ``FACTOR_PSEUDO_COUNT``)."""
        week_sum = day_sum = FACTOR_PSEUDO_COUNT
        for near in range(slot - FACTOR_HOURS, slot + FACTOR_HOURS + 1):
            week = self.week.get(near % 168)
            day = self.day.get(near % 24)
            if week is not None and day is not None:
                week_sum += week[0]
                day_sum += day[0]
        return week_sum / day_sum

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
        if (
            events == 0
            and self.stat == 0
            and not self.active
            and self.quiet_stays_zero
            and (self.hour + 1) * HOUR > now
        ):
            # At rest within the hour: ``_advance`` would take 0 - (ratio - 1) x rate x dt
            # (rate >= 0) back up to 0.0 and leave ``active`` and ``flagged`` as they are.
            self.last, self.seen = now, cumulative
            return False
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
            self.stat = min(max(stat, 0.0), self.threshold + abs(self.log_ratio))
            self.active = self.stat >= (self.release if self.active else self.threshold)
            self.flagged = self.flagged or self.active
        self.last = until

    def _learn(self, slot: int, count: float) -> None:
        self.cached = (-1, 0.0)
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
        self.cached = (-1, 0.0)
