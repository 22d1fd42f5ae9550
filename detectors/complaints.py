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
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from support_monitor.detectors.complaint_cusum import RateCusum
from support_monitor.detectors.config import ComplaintSpikeSettings
from support_monitor.detectors.poisson import (
    critical_bracket,
    critical_count,
    critical_count_within,
    sf,
)
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    WorstExport,
    fmt,
    window_index,
)
from support_monitor.detectors.signal import Signal

_SAMPLES_PER_WINDOW = 120
CUSUM_MARGIN = 0.5
"""Both complaint CUSUMs take the usual rate half a standard error of its estimate high
(``complaint_cusum.py``): a count learned once, on the second day, is not trusted to the
complaint."""
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
Segments = tuple[tuple[float, int], ...]
"""A window cut at the hours it overlaps: (share of the window, hour-of-week slot) each."""


def segments(now: float, span: float, slot_of: SlotOf) -> Segments:
    """The window ``(now - span, now]`` cut at hour boundaries, oldest first."""
    t = now - span
    out = []
    while t < now:
        end = min(now, (math.floor(t / 3600.0) + 1) * 3600.0)
        out.append(((end - t) / span, slot_of(t)))
        t = end
    return tuple(out)


class Baseline:
    """Expected count per window for one series (a channel, or a channel and category)."""

    __slots__ = ("glob", "settings", "slots", "span", "version")

    def __init__(self, settings: ComplaintSpikeSettings, span: float) -> None:
        self.settings = settings
        self.span = span
        self.slots: dict[int, Ewma] = {}
        self.glob = Ewma()
        self.version = 0
        """Bumped whenever ``learn`` runs: expectations computed before may be stale."""

    def slot_expected(self, slot: int) -> float:
        s = self.settings
        prior = s.prior_per_hour * self.span / 3600.0
        fallback = blend(self.glob, prior, s.warmup_samples)
        return blend(self.slots.get(slot), fallback, s.warmup_samples)

    def expected(self, now: float, slot_of: SlotOf) -> float:
        """Expected count over ``(now - span, now]``: each hour slot weighted by its overlap, so
        a window straddling 09:00 expects part night and part day."""
        return self.expected_over(segments(now, self.span, slot_of))

    def expected_over(self, segs: Segments) -> float:
        """``expected`` for the hour segments of a window (see :func:`segments`)."""
        total = 0.0
        for weight, slot in segs:
            total += weight * self.slot_expected(slot)
        return total

    def learn(self, slot: int, count: float, *, flagged: bool) -> None:
        """Teach one complete period. A flagged period is skipped once the slot is warmed up
        (flags before that came from the fallback, not from this slot), unless the slot has
        skipped ``relearn_after`` periods in a row: then the level has shifted for good."""
        s = self.settings
        self.version += 1
        ewma = self.slots.setdefault(slot, Ewma())
        if flagged and ewma.n >= s.warmup_samples and ewma.skipped < s.relearn_after:
            ewma.skipped += 1
            return
        ewma.skipped = 0
        ewma.update(count, s.slot_weight)
        if not flagged:
            self.glob.update(count, s.global_weight)


class _Series:
    """State of one judged series: baseline, whether this period was flagged, last signal, and
    the expectation (and critical count) last computed, with what they were computed for."""

    __slots__ = (
        "active",
        "baseline",
        "crit_for",
        "crit_range",
        "exp_for",
        "expected",
        "flagged",
        "slot_values",
        "slots_for",
    )

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.flagged = False
        self.active = False
        self.exp_for: tuple[Segments, int] | None = None
        self.expected = math.nan
        self.slots_for: tuple[tuple[int, ...], int] | None = None
        self.slot_values: list[float] = []
        """``baseline.slot_expected`` of the slots in ``slots_for`` (at that version)."""
        self.crit_for: tuple[tuple[int, ...], int, float] | None = None
        self.crit_range: tuple[float, float, tuple[int, int] | None] = (math.nan, math.nan, None)

    def values_of(self, slots: tuple[int, ...]) -> list[float]:
        """The expected count of each slot, computed once per baseline version."""
        key = (slots, self.baseline.version)
        if self.slots_for != key:
            self.slot_values = [self.baseline.slot_expected(slot) for slot in slots]
            self.slots_for = key
        return self.slot_values


class _CategoryCounts:
    """Windowed counts of one channel's categories by differencing cumulative counters."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.step = span / _SAMPLES_PER_WINDOW
        self.samples: deque[tuple[float, dict[str, int]]] = deque()
        self.period_start: dict[str, int] | None = None
        # What the last counts were computed from; the same inputs give the same dict back.
        self._from: tuple[object, object, tuple[int, ...]] | None = None
        self._counts: dict[str, int] = {}

    def observe(self, now: float, cumulative: dict[str, int]) -> dict[str, int]:
        """Record a sample (at most one per step) and return counts over ``(now - span, now]``:
        the very dict of the last call while the counts are unchanged."""
        samples = self.samples
        if not samples or now - samples[-1][0] >= self.step:
            samples.append((now, dict(cumulative)))
        # Keep the newest sample at or before the window start as the base, drop older ones.
        while len(samples) >= 2 and samples[1][0] <= now - self.span:
            samples.popleft()
        first = samples[0]
        base_sample = first if first[0] <= now - self.span else None
        inputs = (cumulative, base_sample, tuple(cumulative.values()))
        last = self._from
        if (
            last is not None
            and last[0] is cumulative
            and last[1] is base_sample
            and (last[2] == inputs[2])
        ):
            return self._counts
        base = base_sample[1] if base_sample is not None else {}
        self._from = inputs
        counts = {cat: n - base.get(cat, 0) for cat, n in cumulative.items()}
        if counts != self._counts or list(counts) != list(self._counts):
            self._counts = counts
        return self._counts

    def dump(self) -> dict[str, object]:
        return {
            "samples": [[t, dict(counts)] for t, counts in self.samples],
            "period_start": None if self.period_start is None else dict(self.period_start),
        }

    def load(self, data: dict[str, Any]) -> None:
        samples = deque(
            (float(t), {str(k): int(v) for k, v in c.items()}) for t, c in data["samples"]
        )
        start = data["period_start"]
        self.period_start = None if start is None else {str(k): int(v) for k, v in start.items()}
        self.samples = samples
        self._from = None

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
        self,
        settings: ComplaintSpikeSettings,
        channels: list[str],
        span: float,
        windows: Sequence[str],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.span = span
        self._window_i = window_index(windows, settings.window)
        self._window_label = f"{span / 60:g} min"
        self._tz = ZoneInfo(settings.timezone)
        self._series: dict[tuple[str, str], _Series] = {}
        self._categories = {ch: _CategoryCounts(span) for ch in channels}
        self._period: int | None = None
        self._first_period: int | None = None
        self._slot_cache: dict[int, int] = {}
        self._segments: Segments = ()
        self._cusum = {ch: self._new_cusum() for ch in channels}
        self._fast = {ch: self._new_fast() for ch in channels}
        self._learnt = dict.fromkeys(channels, 0)
        """Per channel: periods learnt so far (a channel's expectations change only then)."""
        self._keys: list[tuple[object, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]

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
                    channel,
                    category,
                    st.flagged,
                    st.active,
                    st.baseline.glob.dump(),
                    [[slot, *e.dump()] for slot, e in sorted(st.baseline.slots.items())],
                ]
                for (channel, category), st in self._series.items()
            ],
            "categories": {ch: c.dump() for ch, c in self._categories.items()},
            "cusum": {ch: c.dump() for ch, c in self._cusum.items()},
            "cusum_fast": {ch: c.dump() for ch, c in self._fast.items()},
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
        cusum = {ch: self._new_cusum() for ch in self.channels}
        for ch, stored in data.get("cusum", {}).items():
            if ch in cusum:
                cusum[ch].load(stored)
        fast = {ch: self._new_fast() for ch in self.channels}
        for ch, stored in data.get("cusum_fast", {}).items():
            if ch in fast:
                fast[ch].load(stored)
        self._series = series
        self._categories = categories
        self._cusum = cusum
        self._fast = fast
        self._period = period
        self._first_period = first
        self._keys = [None] * len(self.channels)  # judge every channel again

    def _state(self, channel: str, category: str) -> _Series:
        key = (channel, category)
        state = self._series.get(key)
        if state is None:
            state = self._series[key] = _Series(Baseline(self.settings, self.span))
        return state

    def evaluate(self, readings: Readings) -> Groups:
        now = readings.now
        s = self.settings
        period = math.floor(now / self.span)
        if self._first_period is None:
            self._first_period = period
        boundary = self._period is not None and period > self._period
        # Learn only a period seen from its start to its end, one tick after another.
        complete = (
            self._period is not None
            and period == self._period + 1
            and self._period != self._first_period
        )
        segs = segments(now, self.span, self.slot)
        if segs == self._segments:
            segs = self._segments  # the same object: expectations cached per series still hold
        self._segments = segs
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        for i, channel in enumerate(self.channels):
            ch = channels[channel]
            total = ch.windows.totals[self._window_i].complaints
            cumulative = ch.complaints
            counts = self._categories[channel].observe(now, cumulative) if s.by_category else None
            rising = self._cusum_step(channel, now, cumulative)
            key = (total, counts, segs, self._learnt[channel], rising)
            last = self._keys[i]
            if (
                last is None
                or last[0] != total
                or last[1] is not counts
                or last[2] is not segs
                or last[3] != key[3]
                or last[4] != rising
            ):
                self._keys[i] = key
                out[i] = self._judge_channel(channel, total, counts, segs, rising=rising)
            if boundary or self._period is None:
                self._learn(channel, total, cumulative, now, learn=complete)
        self._groups = out.result()
        self._period = period
        return self._groups

    def _new_cusum(self) -> RateCusum:
        return self._rate_cusum(self.settings.cusum_ratio, self.settings.cusum_threshold)

    def _new_fast(self) -> RateCusum:
        return self._rate_cusum(self.settings.cusum_fast_ratio, self.settings.cusum_fast_threshold)

    def _rate_cusum(self, ratio: float, threshold: float) -> RateCusum:
        s = self.settings
        relearn_hours = max(1, round(s.relearn_after * self.span / 3600.0))
        return RateCusum(ratio, threshold, s.prior_per_hour, relearn_hours, margin=CUSUM_MARGIN)

    def _cusum_step(
        self, channel: str, now: float, cumulative: dict[str, int]
    ) -> tuple[float, float] | None:
        """Advance the channel's two Poisson CUSUMs (``complaint_cusum.py``, each with its own
        baseline); the (ratio, threshold) of the first active one (the slow one first), or
        None."""
        s = self.settings
        total = float(sum(cumulative.values()))
        slow = s.cusum_threshold > 0 and self._cusum[channel].step(now, total, self.slot)
        fast = s.cusum_fast_threshold > 0 and self._fast[channel].step(now, total, self.slot)
        if slow:
            return (s.cusum_ratio, s.cusum_threshold)
        if fast:
            return (s.cusum_fast_ratio, s.cusum_fast_threshold)
        return None

    def _judge_channel(
        self,
        channel: str,
        total: int,
        counts: dict[str, int] | None,
        segs: Segments,
        *,
        rising: tuple[float, float] | None,
    ) -> list[Signal]:
        s = self.settings
        observed: dict[str, int] = {"": total}
        if counts is not None:
            observed.update(counts)
        # Bonferroni: each of n categories is tested at alpha / n, so splitting a channel into
        # categories does not multiply its false alarms.
        category_alpha = s.alpha / max(1, len(observed) - 1)
        out: list[Signal] = []
        for category, count in observed.items():
            state = self._state(channel, category)
            alpha = category_alpha if category else s.alpha
            out.append(
                self._judge(
                    channel,
                    category,
                    count,
                    state,
                    segs,
                    alpha=alpha,
                    rising=None if category else rising,
                )
            )
        return out

    def _expected(self, state: _Series, segs: Segments) -> float:
        """The series' expected count over the window, computed once per window position
        (hour segments) and baseline version."""
        baseline = state.baseline
        exp_for = (segs, baseline.version)
        last = state.exp_for
        if last is None or last[0] is not segs or last[1] != exp_for[1]:
            # Baseline.expected_over's sum, term by term, with the slot values cached
            values = state.values_of(tuple(slot for _, slot in segs))
            total = 0.0
            for (weight, _), value in zip(segs, values, strict=True):
                total += weight * value
            state.expected = total
            state.exp_for = exp_for
        return state.expected

    def _critical(self, state: _Series, segs: Segments, expected: float, alpha: float) -> int:
        """``critical_count(expected, alpha)``. While the window straddles an hour boundary the
        expectation moves every tick between the slots' values; the critical counts of the two
        ends bound it (``poisson.critical_bracket``, computed once), so the search only runs
        between them (``poisson.critical_count_within``): no tail evaluation when they agree."""
        if len(segs) < 2:
            return critical_count(expected, alpha)
        baseline = state.baseline
        slots = tuple(slot for _, slot in segs)
        crit_for = (slots, baseline.version, alpha)
        if state.crit_for != crit_for:
            values = state.values_of(slots)
            lo, hi = min(values) * (1 - 1e-12), max(values) * (1 + 1e-12)
            state.crit_range = (lo, hi, critical_bracket(lo, hi, alpha))
            state.crit_for = crit_for
        lo, hi, bracket = state.crit_range
        if bracket is not None and lo <= expected <= hi:
            return critical_count_within(expected, alpha, bracket)
        return critical_count(expected, alpha)

    def _judge(
        self,
        channel: str,
        category: str,
        count: int,
        state: _Series,
        segs: Segments,
        *,
        alpha: float,
        rising: tuple[float, float] | None = None,
    ) -> Signal:
        s = self.settings
        expected = self._expected(state, segs)
        threshold = max(
            self._critical(state, segs, expected, alpha),
            s.min_count,
            math.ceil(s.min_ratio * expected),
        )
        sharp = count >= threshold
        active = sharp or rising is not None
        state.active = active
        state.flagged = state.flagged or active
        what = f"{channel} complaints" + (f" ({category})" if category else "")
        if rising is not None and not sharp:
            ratio, at = rising
            summary = (
                f"{what}: {count} in {self._window_label}, expected {fmt(expected)}; a sustained "
                f"rise (CUSUM for {ratio:g}x the usual rate at {at:g})"
            )
        elif active:
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
            sustained=rising is not None and not sharp,
        )

    def _learn(
        self, channel: str, total: int, cumulative: dict[str, int], now: float, *, learn: bool
    ) -> None:
        """At a period boundary: hand each series its count of the ended period and whether it
        was flagged (``Baseline.learn`` skips a flagged period, unless the slot is still warming
        up or ``relearn_after`` flagged periods came in a row)."""
        counts: dict[str, int] = {"": total}
        by_category = (
            self._categories[channel].period(cumulative) if self.settings.by_category else None
        )
        if by_category:
            counts.update(by_category)
        slot = self.slot(now - self.span / 2)
        if learn:
            self._learnt[channel] += 1
        for category, count in counts.items():
            state = self._state(channel, category)
            if learn:
                state.baseline.learn(slot, count, flagged=state.flagged)
            state.flagged = state.active
