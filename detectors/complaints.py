"""Complaint spike: windowed complaint counts against a seasonal baseline learned online.

Complaints per minute are small integers, so a window's count is judged with a one-sided Poisson
tail test against the expected count for that hour of the week: active when
P(X >= observed | expected) < alpha, observed >= min_count and observed >= min_ratio * expected.
The expected count is an exponentially weighted mean per (series, hour-of-week slot) of the counts
of past non-overlapping window-length periods. Until a slot has ``warmup_samples`` it is blended
with the all-hours mean, which itself is blended with ``prior_per_hour`` until it has enough
samples. Once a slot is warmed up, a period in which the series was flagged is not learned, so a
spike never teaches the baseline that spikes are normal (during warm-up the flags came from the
fallback, and a persistent shift is learned after ``relearn_after`` flagged periods in a row).

The channel total comes from the engine's window (the ``support_complaints_window`` gauge);
categories are each tested at alpha / (number of categories) (Bonferroni); their
counts are the differences of the cumulative ``support_complaints_total`` counters,
sampled at most ~120 times per window so memory stays bounded.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.config import ComplaintSpikeSettings
from detectors.poisson import critical_count, sf
from detectors.readings import Readings, WorstExport, fmt
from detectors.signal import Signal

_SAMPLES_PER_WINDOW = 120
HOURS_PER_WEEK = 168


class Ewma:
    """Running mean for the first 1/weight samples, then an exponentially weighted mean."""

    __slots__ = ("mean", "n", "skipped")

    def __init__(self) -> None:
        self.mean = 0.0
        self.n = 0
        self.skipped = 0
        """Flagged periods in a row that were not learned."""

    def update(self, x: float, weight: float) -> None:
        self.n += 1
        self.mean += max(weight, 1.0 / self.n) * (x - self.mean)

    def dump(self) -> list[float]:
        return [self.mean, self.n, self.skipped]

    @classmethod
    def load(cls, data: list[float]) -> Ewma:
        mean, n, skipped = data
        e = cls()
        e.mean, e.n, e.skipped = float(mean), int(n), int(skipped)
        return e


def blend(e: Ewma | None, fallback: float, warmup: int) -> float:
    """``e``'s mean once it has ``warmup`` samples; before, shrunk toward ``fallback``."""
    if e is None or e.n == 0:
        return fallback
    if e.n >= warmup:
        return e.mean
    return (e.n * e.mean + (warmup - e.n) * fallback) / warmup


SlotOf = Callable[[float], int]


class Baseline:
    """Expected count per window for one series (a channel, or a channel and category)."""

    __slots__ = ("glob", "settings", "slots", "span")

    def __init__(self, settings: ComplaintSpikeSettings, span: float) -> None:
        self.settings = settings
        self.span = span
        self.slots: dict[int, Ewma] = {}
        self.glob = Ewma()

    def slot_expected(self, slot: int) -> float:
        s = self.settings
        prior = s.prior_per_hour * self.span / 3600.0
        fallback = blend(self.glob, prior, s.warmup_samples)
        return blend(self.slots.get(slot), fallback, s.warmup_samples)

    def expected(self, now: float, slot_of: SlotOf) -> float:
        """Expected count over ``(now - span, now]``: each hour slot weighted by its overlap, so
        a window straddling 09:00 expects part night and part day."""
        start, total = now - self.span, 0.0
        t = start
        while t < now:
            end = min(now, (math.floor(t / 3600.0) + 1) * 3600.0)
            total += (end - t) / self.span * self.slot_expected(slot_of(t))
            t = end
        return total

    def learn(self, slot: int, count: float, *, flagged: bool) -> None:
        """Teach one complete period. A flagged period is skipped once the slot is warmed up
        (flags before that came from the fallback, not from this slot), unless the slot has
        skipped ``relearn_after`` periods in a row: then the level has shifted for good."""
        s = self.settings
        ewma = self.slots.setdefault(slot, Ewma())
        if flagged and ewma.n >= s.warmup_samples and ewma.skipped < s.relearn_after:
            ewma.skipped += 1
            return
        ewma.skipped = 0
        ewma.update(count, s.slot_weight)
        if not flagged:
            self.glob.update(count, s.global_weight)


class _Series:
    """State of one judged series: baseline, whether this period was flagged, last signal."""

    __slots__ = ("active", "baseline", "flagged")

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.flagged = False
        self.active = False


class _CategoryCounts:
    """Windowed counts of one channel's categories by differencing cumulative counters."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.step = span / _SAMPLES_PER_WINDOW
        self.samples: deque[tuple[float, dict[str, int]]] = deque()
        self.period_start: dict[str, int] | None = None

    def observe(self, now: float, cumulative: dict[str, int]) -> dict[str, int]:
        """Record a sample (at most one per step) and return counts over ``(now - span, now]``."""
        samples = self.samples
        if not samples or now - samples[-1][0] >= self.step:
            samples.append((now, dict(cumulative)))
        # Keep the newest sample at or before the window start as the base, drop older ones.
        while len(samples) >= 2 and samples[1][0] <= now - self.span:
            samples.popleft()
        base = samples[0][1] if samples[0][0] <= now - self.span else {}
        return {cat: n - base.get(cat, 0) for cat, n in cumulative.items()}

    def dump(self) -> dict[str, object]:
        return {
            "samples": [[t, dict(counts)] for t, counts in self.samples],
            "period_start": None if self.period_start is None else dict(self.period_start),
        }

    def load(self, data: dict[str, Any]) -> None:
        samples = deque((float(t), {str(k): int(v) for k, v in c.items()}) for t, c in
                        data["samples"])
        start = data["period_start"]
        self.period_start = None if start is None else {str(k): int(v) for k, v in start.items()}
        self.samples = samples

    def period(self, cumulative: dict[str, int]) -> dict[str, int] | None:
        """Counts since the last period boundary (None on the first one), then restart."""
        start = self.period_start
        self.period_start = dict(cumulative)
        if start is None:
            return None
        return {cat: n - start.get(cat, 0) for cat, n in cumulative.items()}


class ComplaintSpikeDetector(WorstExport):
    """Signals per channel (no extra label) and, with ``by_category``, per category."""

    name = "complaint_spike"
    upward = True

    def __init__(
        self, settings: ComplaintSpikeSettings, channels: list[str], span: float
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.span = span
        self._window_label = f"{span / 60:g} min"
        self._tz = ZoneInfo(settings.timezone)
        self._series: dict[tuple[str, str], _Series] = {}
        self._categories = {ch: _CategoryCounts(span) for ch in channels}
        self._period: int | None = None
        self._first_period: int | None = None
        self._slot_cache: dict[int, int] = {}

    def slot(self, t: float) -> int:
        """Hour of the week (0 = Monday 00:00-01:00) in the configured time zone."""
        hour = math.floor(t / 3600.0)
        slot = self._slot_cache.get(hour)
        if slot is None:
            if len(self._slot_cache) > 64:
                self._slot_cache.clear()
            local = datetime.fromtimestamp(hour * 3600.0, self._tz)
            slot = self._slot_cache[hour] = local.weekday() * 24 + local.hour
        return slot

    def export_state(self) -> dict[str, object]:
        """Learnt and temporal state as plain data (see ``DetectorSuite.export_state``)."""
        return {
            "period": self._period,
            "first_period": self._first_period,
            "series": [
                [
                    channel, category, st.flagged, st.active, st.baseline.glob.dump(),
                    [[slot, *e.dump()] for slot, e in sorted(st.baseline.slots.items())],
                ]
                for (channel, category), st in self._series.items()
            ],
            "categories": {ch: c.dump() for ch, c in self._categories.items()},
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        """Put back what :meth:`export_state` returned (for the same settings and channels).
        Everything is built first and assigned last, so a malformed state changes nothing."""
        series: dict[tuple[str, str], _Series] = {}
        for channel, category, flagged, active, glob, slots in data["series"]:
            if channel not in self._categories:
                continue
            baseline = Baseline(self.settings, self.span)
            baseline.glob = Ewma.load(glob)
            baseline.slots = {int(slot): Ewma.load(rest) for slot, *rest in slots}
            st = _Series(baseline)
            st.flagged, st.active = bool(flagged), bool(active)
            series[str(channel), str(category)] = st
        categories = {ch: _CategoryCounts(self.span) for ch in self.channels}
        for ch, stored in data["categories"].items():
            if ch in categories:
                categories[ch].load(stored)
        period, first = data["period"], data["first_period"]
        period = None if period is None else int(period)
        first = None if first is None else int(first)
        self._series = series
        self._categories = categories
        self._period = period
        self._first_period = first

    def _state(self, channel: str, category: str) -> _Series:
        key = (channel, category)
        state = self._series.get(key)
        if state is None:
            state = self._series[key] = _Series(Baseline(self.settings, self.span))
        return state

    def evaluate(self, readings: Readings) -> list[Signal]:
        now = readings.now
        s = self.settings
        period = math.floor(now / self.span)
        if self._first_period is None:
            self._first_period = period
        boundary = self._period is not None and period > self._period
        # Learn only a period seen from its start to its end, one tick after another.
        complete = (
            self._period is not None and period == self._period + 1
            and self._period != self._first_period
        )
        out: list[Signal] = []
        for channel in self.channels:
            total = readings.window(channel, s.window).complaints
            observed: dict[str, int] = {"": total}
            cumulative = readings.engine.channels[channel].complaints
            if s.by_category:
                observed.update(self._categories[channel].observe(now, cumulative))
            # Bonferroni: each of n categories is tested at alpha / n, so splitting a channel into
            # categories does not multiply its false alarms.
            category_alpha = s.alpha / max(1, len(observed) - 1)
            for category, count in observed.items():
                state = self._state(channel, category)
                alpha = category_alpha if category else s.alpha
                out.append(self._judge(channel, category, count, state, now, alpha=alpha))
            if boundary or self._period is None:
                self._learn(channel, observed[""], cumulative, now, learn=complete)
        self._period = period
        return out

    def _judge(
        self, channel: str, category: str, count: int, state: _Series, now: float, *, alpha: float
    ) -> Signal:
        s = self.settings
        expected = state.baseline.expected(now, self.slot)
        threshold = max(
            critical_count(expected, alpha), s.min_count, math.ceil(s.min_ratio * expected)
        )
        active = count >= threshold
        state.active = active
        state.flagged = state.flagged or active
        what = f"{channel} complaints" + (f" ({category})" if category else "")
        if active:
            p = sf(count, expected)
            summary = (
                f"{what}: {count} in {self._window_label}, expected {fmt(expected)} "
                f"(p = {p:.1e} < {alpha:.2g})"
            )
        else:
            summary = (
                f"{what}: {count} in {self._window_label}, expected {fmt(expected)}, "
                f"fires at {threshold}"
            )
        return Signal(
            detector=self.name,
            channel=channel,
            active=active,
            score=float(count),
            threshold=float(threshold),
            expected=expected,
            labels=(("category", category),) if category else (),
            summary=summary,
        )

    def _learn(
        self, channel: str, total: int, cumulative: dict[str, int], now: float, *, learn: bool
    ) -> None:
        """At a period boundary: teach each unflagged series its count of the ended period."""
        counts: dict[str, int] = {"": total}
        by_category = (
            self._categories[channel].period(cumulative) if self.settings.by_category else None
        )
        if by_category:
            counts.update(by_category)
        slot = self.slot(now - self.span / 2)
        for category, count in counts.items():
            state = self._state(channel, category)
            if learn:
                state.baseline.learn(slot, count, flagged=state.flagged)
            state.flagged = state.active
