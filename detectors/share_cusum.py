"""One-sided binomial CUSUM on the share of bad outcomes of one channel (unsatisfied ratings).

The window test of a ratio (``threshold.py`` with ``confidence``) needs an hour's ratings to
show a drop; this CUSUM accumulates the evidence rating by rating. With ``n`` new outcomes of
which ``k`` are bad since the last tick, the usual bad share ``p0`` and the share to detect
``p1 = min(ratio x p0, 0.99)``:

    S <- max(0, S + k ln(p1 / p0) + (n - k) ln((1 - p1) / (1 - p0)))

(the log-likelihood ratio of "the bad share is p1" against "it is p0"), active from
``S >= threshold`` until ``S`` falls below ``threshold - ln(p1 / p0)`` (at least half the
threshold), and capped at ``threshold + ln(p1 / p0)`` so it stops soon after the drop does.
The outcomes counted since the last tick are added together at the tick (the counts are
differences of the channel's cumulative counters, so each outcome counts once, whatever the
tick spacing). An hour without any outcome sets ``S`` back to 0: evidence from before a
silent hour is stale.

``p0`` is the usual share of the hour-of-week slot of the last tick
(``share_baseline.PooledBaseline``): at each hour boundary the ended hour's counts (trials, bad)
teach the slot's EWMAs and the all-hours EWMAs. The all-hours share is pooled with the ``prior``
(which counts as ``prior_trials`` outcomes), and a learnt slot is pulled toward it by the
empirical-Bayes pseudo-count of the slots: when the slots differ no more than binomial noise,
every slot has the all-hours share. An error in ``p0`` costs more one way than the other: a
usual share learnt too low makes each good outcome count for little against the bad ones, and a
few unlucky hours page. An hour in which the CUSUM was active is not learnt (unless
``relearn_after`` such hours came in a row): a drop never becomes the usual. The state is the
statistic, two count pairs and the baseline (at most 168 slots).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from support_monitor.detectors.share_baseline import PooledBaseline
from support_monitor.detectors.share_cusum_config import ShareCusumSettings

HOUR = 3600.0
P_MIN, P_MAX = 1e-3, 0.99
"""The usual share is clamped into [P_MIN, P_MAX); the share to detect is at most P_MAX."""

Pair = tuple[int, int]
"""(trials, bad outcomes), cumulative."""


class HourOfWeek:
    """Hour of the week (0 = Monday 00:00-01:00) of a time in one time zone, cached per hour."""

    __slots__ = ("_cache", "_tz")

    def __init__(self, timezone: str) -> None:
        self._tz = ZoneInfo(timezone)
        self._cache: dict[int, int] = {}

    def __call__(self, t: float) -> int:
        hour = math.floor(t / HOUR)
        slot = self._cache.get(hour)
        if slot is None:
            if len(self._cache) > 256:
                self._cache.clear()
            local = datetime.fromtimestamp(hour * HOUR, self._tz)
            slot = self._cache[hour] = local.weekday() * 24 + local.hour
        return slot


class ShareCusum:
    """The CUSUM and the learnt share of one channel."""

    __slots__ = (
        "active",
        "baseline",
        "flagged",
        "hour",
        "p0",
        "scale",
        "seen",
        "settings",
        "skipped",
        "start",
        "stat",
    )

    def __init__(self, settings: ShareCusumSettings) -> None:
        self.settings = settings
        self.baseline = PooledBaseline(settings, settings.prior)
        self.stat = 0.0
        self.active = False
        self.flagged = False
        """Active at some tick of the current hour (the hour is then not learnt)."""
        self.skipped = 0
        """Flagged hours in a row that were not learnt."""
        self.hour = -1
        """The hour (epoch hours) of the last tick; -1 before the first."""
        self.seen: Pair | None = None
        """The cumulative counts at the last tick."""
        self.start: Pair | None = None
        """The cumulative counts at the start of ``hour``; None when not seen from its start."""
        self.p0 = settings.prior
        """The usual share the last outcomes were judged against."""
        self.scale = 1.0
        """The threshold (and the release and cap derived from it) is ``settings.threshold``
        times this: the service-level CUSUM (``sl_cusum.py``) sets it from the dispersion of its
        outcomes; 1 elsewhere."""

    def usual(self, slot: int) -> float:
        """The usual bad share of ``slot``, clamped into [P_MIN, P_MAX)."""
        return min(P_MAX - 1e-9, max(P_MIN, self.baseline.share(slot)))

    def step(self, now: float, counts: Pair, slot_of: Callable[[float], int]) -> bool:
        """Advance to ``now`` with the channel's cumulative (trials, bad); whether active."""
        hour = math.floor(now / HOUR)
        seen = self.seen
        if seen is None or counts[0] < seen[0] or counts[1] < seen[1] or hour < self.hour:
            # the first tick, or counters / time that went back: start counting afresh
            self.seen, self.start, self.hour = counts, None, hour
            return self.active
        trials, bad = counts[0] - seen[0], counts[1] - seen[1]
        if trials > 0:
            self._add(trials, min(bad, trials), slot_of(self.hour * HOUR))
        self.seen = counts
        if hour > self.hour:
            self._close_hour(counts, slot_of(self.hour * HOUR), complete=hour == self.hour + 1)
            self.hour = hour
        return self.active

    def _add(self, trials: int, bad: int, slot: int) -> None:
        s = self.settings
        p0 = self.p0 = self.usual(slot)
        p1 = min(s.ratio * p0, P_MAX)
        jump = math.log(p1 / p0)
        stat = self.stat + bad * jump + (trials - bad) * math.log((1 - p1) / (1 - p0))
        threshold = s.threshold * self.scale
        self.stat = min(max(stat, 0.0), threshold + jump)
        release = max(threshold - jump, threshold / 2)
        self.active = self.stat >= (release if self.active else threshold)
        self.flagged = self.flagged or self.active

    def _close_hour(self, counts: Pair, slot: int, *, complete: bool) -> None:
        """At the first tick of a new hour: learn the ended hour (seen from its start and not
        flagged), reset a statistic whose hour had no outcome, start the next hour."""
        start, self.start = self.start, counts
        flagged, self.flagged = self.flagged, self.active
        if start is None:
            return
        trials, bad = counts[0] - start[0], counts[1] - start[1]
        if trials <= 0:
            self.stat, self.active, self.flagged = 0.0, False, False
            return
        if not complete:
            return
        if flagged and self.skipped < self.settings.relearn_after:
            self.skipped += 1
            return
        self.skipped = 0
        self.baseline.learn(slot, (trials, bad))

    def dump(self) -> list[Any]:
        return [
            self.stat,
            self.active,
            self.flagged,
            self.skipped,
            self.hour,
            None if self.seen is None else list(self.seen),
            None if self.start is None else list(self.start),
            self.p0,
            self.baseline.dump(),
        ]

    def load(self, data: list[Any]) -> None:
        """Put back what :meth:`dump` returned (all read first, so a malformed dump raises
        before anything changes)."""
        stat, active, flagged, skipped, hour, seen, start, p0, baseline = data
        fresh = PooledBaseline(self.settings, self.settings.prior)
        fresh.load(baseline)
        pairs = [None if x is None else (int(x[0]), int(x[1])) for x in (seen, start)]
        self.stat, self.active, self.flagged = float(stat), bool(active), bool(flagged)
        self.skipped, self.hour, self.p0 = int(skipped), int(hour), float(p0)
        self.seen, self.start = pairs
        self.baseline = fresh
