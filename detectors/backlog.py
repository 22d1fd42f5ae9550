"""Backlog growth: warn while the customer is still waiting, before the answer-time breach.

Per live channel, the oldest wait w (the ``support_queue_oldest_wait_seconds`` gauge, max over
queues) must not reach T. The oldest wait grows at 1 s/s while nobody is answered and stays flat
when answers keep pace, so its recent growth rate r (least-squares slope over ``rate_window``,
clamped to 0..1) says how fast the head of the queue moves toward T. The projected time to breach
is (T - w) / r (0 once w >= T, infinite when r <= 0). The condition holds when that projection
is within ``horizon``, the queue is growing (more contacts queued than answered or abandoned in
``window``) and at least ``min_waiting`` contacts wait, or when the arrival CUSUM is active
(arrivals well above the usual rate for this hour) while contacts queue or, when they do not
(short patience: the extra contacts give up), while the service level over
``surge_service_window`` is below the channel's target. The signal is active once the condition held
at every tick for ``sustain``, until it held for less than a quarter of ``release``
(``detectors/sustain.py``). score = projected seconds, threshold = horizon.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from support_monitor.detectors.complaint_cusum import RateCusum, hour_of_week
from support_monitor.detectors.config import BacklogGrowthSettings, resolve_window
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    WorstExport,
    window_index,
)
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.sustain import Sustain
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.durations import format_duration

SURGE_MIN_RATE_PER_HOUR = 12.0
"""The arrival CUSUM takes a usual rate below 12 contacts an hour as 12: a rise in a nearly
empty hour is no backlog, and the CUSUM falls back within an hour without arrivals."""


SURGE_MARGIN = 1.0
"""The arrival CUSUM's usual rate errs high by one standard error of its estimate: tuned for
1.4x, it drifts up on healthy traffic once the usual rate is underestimated by more than
1 - ln(1.4) / 0.4 = 16% (a 4x complaint CUSUM only past 1 - ln(4) / 3 = 54%)."""


def slope(points: Iterable[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points; 0 with fewer than two distinct times.

    Exact up to one final rounding (see ``History``)."""
    return History(points).slope()


def _fsum_slope(ts: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope summed term by term with ``fsum``: used only while a point that
    is not finite (NaN or an infinity, which has no exact integer form) is in the window; NaN
    where that sum has no value."""
    n = len(ts)
    try:
        mt = math.fsum(ts) / n
        my = math.fsum(ys) / n
        var = math.fsum((t - mt) ** 2 for t in ts)
        if var <= 0:
            return 0.0
        return math.fsum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var
    except (ValueError, OverflowError):  # inf - inf, or a sum beyond the largest float
        return math.nan


def seconds_to_breach(answer: float, oldest: float, rate: float) -> float:
    """Projected seconds until the oldest wait reaches ``answer`` at growth ``rate`` (s/s)."""
    remaining = answer - oldest
    if remaining <= 0:
        return 0.0
    if rate <= 0:
        return math.inf
    return remaining / min(rate, 1.0)


class History:
    """The (time, oldest wait) points of one channel within ``rate_window``, with exact running
    sums for their least-squares slope, and how many of the newest points are 0 (no one
    waiting): when all are, the slope is 0 without arithmetic.

    A float is a dyadic rational: ``t == tn / 2**ta`` with ``tn, ta = as_integer_ratio()``.
    Every time is kept in the sums as the integer ``t * 2**a`` and every wait as ``y * 2**b``,
    where ``a`` and ``b`` are the largest exponents seen so far (a finer point scales the sums
    up by a power of two, exactly), so n, St, Sy, Stt and Sty are Python ints with no rounding
    and no drift however long the window slides: adding a point adds its terms, dropping one
    subtracts the very same integers. The slope is the closed form
    (n Sty - St Sy) / (n Stt - St^2), one correctly rounded int division. The integers are at
    most a few hundred bits: a float's exponent is at least -1074, the times are below 2**1024
    and ``rate_window`` bounds n.

    A point that is not finite (NaN, an infinity) has no integer form: it is kept out of the
    sums and counted in ``bad``; while one is in the window the slope is the ``fsum`` form."""

    __slots__ = ("a", "b", "bad", "st", "stt", "sty", "sy", "ts", "ys", "zeros")

    def __init__(self, points: Iterable[tuple[float, float]] = ()) -> None:
        self.ts: deque[float] = deque()
        self.ys: deque[float] = deque()
        self.zeros = 0
        self.bad = 0
        self.a = self.b = 0
        self.st = self.sy = self.stt = self.sty = 0
        for t, y in points:
            self._push(t, y)

    def __len__(self) -> int:
        return len(self.ts)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return zip(self.ts, self.ys, strict=True)

    def _push(self, t: float, y: float) -> None:
        self.ts.append(t)
        self.ys.append(y)
        self.zeros = self.zeros + 1 if y == 0 else 0
        try:
            tn, td = t.as_integer_ratio()
            yn, yd = y.as_integer_ratio()
        except (OverflowError, ValueError):  # an infinity, NaN
            self.bad += 1
            return
        ta = td.bit_length() - 1  # td == 2**ta
        yb = yd.bit_length() - 1
        if ta > self.a:  # a finer time: every sum with a time in it moves to the new scale
            up = ta - self.a
            self.st <<= up
            self.stt <<= 2 * up
            self.sty <<= up
            self.a = ta
        if yb > self.b:
            up = yb - self.b
            self.sy <<= up
            self.sty <<= up
            self.b = yb
        ti = tn << (self.a - ta)
        yi = yn << (self.b - yb)
        self.st += ti
        self.sy += yi
        self.stt += ti * ti
        self.sty += ti * yi

    def add(self, now: float, y: float, keep: float) -> None:
        """Append (now, y), then drop the points at or before ``now - keep``: their very
        integers leave the sums (the scales only grow while a point is held, so its integers
        at the current scales are exact)."""
        self._push(now, y)
        ts, ys = self.ts, self.ys
        edge = now - keep
        if ts[0] > edge:
            return
        a, b, bad = self.a, self.b, self.bad
        st, sy, stt, sty = self.st, self.sy, self.stt, self.sty
        while ts and ts[0] <= edge:
            t = ts.popleft()
            v = ys.popleft()
            try:
                tn, td = t.as_integer_ratio()
                yn, yd = v.as_integer_ratio()
            except (OverflowError, ValueError):  # a point kept out of the sums
                bad -= 1
                continue
            ti = tn << (a - td.bit_length() + 1)
            yi = yn << (b - yd.bit_length() + 1)
            st -= ti
            sy -= yi
            stt -= ti * ti
            sty -= ti * yi
        self.bad = bad
        self.st, self.sy, self.stt, self.sty = st, sy, stt, sty

    def slope(self) -> float:
        n = len(self.ts)
        if self.zeros >= n or n < 2:
            return 0.0  # every y is 0 (the exact slope is 0), or no two points
        if self.bad:
            return _fsum_slope(self.ts, self.ys)
        st = self.st
        den = n * self.stt - st * st  # n^2 times the variance of t, scaled by 4**a
        if den <= 0:
            return 0.0  # all times equal
        num = n * self.sty - st * self.sy  # scaled by 2**(a + b)
        shift = self.a - self.b  # slope == num / den * 2**shift
        try:
            return (num << shift) / den if shift >= 0 else num / (den << -shift)
        except OverflowError:  # beyond the largest float
            return math.inf if num > 0 else -math.inf


class BacklogGrowthDetector(WorstExport):
    """One signal per live channel (no extra labels).

    Every tick appends the channel's oldest wait to its history (the growth rate is fitted on
    it). A new signal is built only when what it shows changed: waiting count, oldest wait, its
    queue, the fitted rate or the window's inflow and outflow."""

    name = "backlog_growth"
    upward = False

    def __init__(
        self,
        settings: BacklogGrowthSettings,
        channels: list[str],
        channel_settings: Mapping[str, ChannelSettings],
        windows: Sequence[str],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self._answer: dict[str, float] = {}
        self._horizon: dict[str, float] = {}
        self._rate_window: dict[str, float] = {}
        self._target: dict[str, float | None] = {}
        for name in channels:
            ch = channel_settings[name]
            assert ch.answer_seconds is not None
            self._answer[name] = ch.answer_seconds
            self._horizon[name] = settings.horizon_for(ch)
            self._rate_window[name] = settings.rate_window_for(ch)
            self._target[name] = ch.service_level_target
        self._window_i = window_index(windows, settings.window)
        service = settings.surge_service_window
        self._service_i = None if service is None else window_index(windows, service)
        self._service_name = None if service is None else resolve_window(service, windows)
        self._history: dict[str, History] = {ch: History() for ch in channels}
        self._active: dict[str, bool] = dict.fromkeys(channels, False)
        self._sustain = {ch: self._new_sustain() for ch in channels}
        self._surge = {ch: self._new_surge() for ch in channels}
        self._keys: list[tuple[object, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]

    def _new_sustain(self) -> Sustain:
        return Sustain(self.settings.sustain, self.settings.release)

    def _new_surge(self) -> RateCusum:
        s = self.settings
        threshold = s.surge_threshold
        # held until half the evidence is gone: single arrivals move it by only ln(ratio)
        return RateCusum(
            s.surge_ratio,
            threshold,
            0.0,
            relearn_hours=2,
            release=threshold / 2,
            min_rate_per_hour=SURGE_MIN_RATE_PER_HOUR,
            margin=SURGE_MARGIN,
        )

    _slot = staticmethod(hour_of_week)

    def export_state(self) -> dict[str, object]:
        """The oldest-wait history of each channel (its growth rate is the slope over it)."""
        return {
            "history": {ch: [[t, y] for t, y in h] for ch, h in self._history.items()},
            "active": [ch for ch, a in self._active.items() if a],
            "surge": {ch: c.dump() for ch, c in self._surge.items()},
            "sustain": {ch: p.dump() for ch, p in self._sustain.items()},
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        history: dict[str, History] = {ch: History() for ch in self.channels}
        for ch, points in data["history"].items():
            if ch in history:
                history[ch] = History([(float(t), float(y)) for t, y in points])
        self._history = history
        self._active = {ch: ch in data.get("active", ()) for ch in self.channels}
        surge = {ch: self._new_surge() for ch in self.channels}
        for ch, stored in data.get("surge", {}).items():
            if ch in surge:
                surge[ch].load(stored)
        self._surge = surge
        sustain = {ch: self._new_sustain() for ch in self.channels}
        for ch, stored in data.get("sustain", {}).items():
            if ch in sustain:
                sustain[ch].load(stored)
        self._sustain = sustain
        self._keys = [None] * len(self.channels)

    def evaluate(self, readings: Readings) -> Groups:
        now = readings.now
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        for i, channel in enumerate(self.channels):
            ch = channels[channel]
            values, waiting = readings.waits(channel)
            oldest = max(values, default=0.0)
            head = None
            if waiting:  # the first queue with the largest oldest wait
                head = list(ch.queues)[values.index(oldest)]
            history = self._history[channel]
            history.add(now, oldest, self._rate_window[channel])
            rate = history.slope()
            agg = ch.windows.totals[self._window_i]
            inflow, outflow = agg.queued, agg.answered + agg.abandoned
            surge = self._surge_step(channel, now, ch.queues.values())  # stepped every tick
            service = None  # the service level a surge counted on, when the queue did not
            if surge and not self._queued_up(waiting, oldest, self._answer[channel]):
                service = self._below_target(channel, ch.windows.totals)
                surge = service is not None
            queue = head if waiting else None
            inputs = (oldest, queue, waiting, rate, inflow, outflow, surge, service)
            last = self._keys[i]
            if last is None or inputs != last[0]:
                self._active[channel] = self._condition(channel, inputs)
            # with the same inputs the condition is the same (its hysteresis included)
            sustain = self._sustain[channel]
            active = sustain.step(now, self._active[channel])
            key = (inputs, active, sustain.since)
            if key == last:
                continue
            self._keys[i] = key
            out[i] = [self._judge(channel, inputs, sustain)]
        self._groups = out.result()
        return self._groups

    def _surge_step(self, channel: str, now: float, queues: Iterable[Any]) -> bool:
        """Advance the channel's arrival CUSUM with its cumulative queued count."""
        if self.settings.surge_threshold <= 0:
            return False
        queued = float(sum(q.queued for q in queues))
        return self._surge[channel].step(now, queued, self._slot)

    def _condition(self, channel: str, inputs: tuple[Any, ...]) -> bool:
        """The condition at one tick: the breach projection, the hysteresis or the surge (in
        ``inputs`` already gated by :meth:`_queued_up`)."""
        oldest, _queue, waiting, rate, inflow, outflow, surge, _service = inputs
        growing = inflow > outflow and rate > 0
        answer = self._answer[channel]
        projected = seconds_to_breach(answer, oldest, rate) if waiting else math.inf
        enough = waiting >= self.settings.min_waiting
        fraction = self.settings.recover_fraction
        held = (
            self._active[channel]
            and enough
            and fraction is not None
            and oldest >= fraction * answer
        )
        return bool((enough and growing and projected <= self._horizon[channel]) or held or surge)

    def _queued_up(self, waiting: int, oldest: float, answer: float) -> bool:
        """Whether a surge of arrivals counts: contacts are waiting, the oldest for at least
        ``surge_min_wait`` of T (more arrivals answered at once are no backlog); always with
        ``surge_min_wait`` 0."""
        fraction = self.settings.surge_min_wait
        if fraction == 0:
            return True
        return waiting >= self.settings.min_waiting and oldest >= fraction * answer

    def _below_target(self, channel: str, totals: Sequence[Any]) -> float | None:
        """The service level over ``surge_service_window`` when it is below the channel's
        target (a surge then counts: the extra contacts give up instead of queueing), else
        ``None`` (also with no such window, no target or nothing offered)."""
        target = self._target[channel]
        if self._service_i is None or target is None:
            return None
        agg = totals[self._service_i]
        offered = agg.answered + agg.abandoned - agg.abandoned_short
        if offered <= 0:
            return None
        level: float = agg.answered_in_sla / offered
        return level if level < target else None

    def _judge(self, channel: str, inputs: tuple[Any, ...], sustain: Sustain) -> Signal:
        oldest, queue, waiting, rate, inflow, outflow, surge, service = inputs
        answer = self._answer[channel]
        projected = seconds_to_breach(answer, oldest, rate) if waiting else math.inf
        growing = waiting >= self.settings.min_waiting and inflow > outflow and rate > 0
        surge_words = f"arrivals above {self.settings.surge_ratio:g}x the usual rate for this hour"
        if service is not None:
            target = self._target[channel]
            surge_words += (
                f", service level {service:.0%} over {self._service_name} (target {target:.0%})"
            )
        if surge:
            cause = f"backlog growing, {surge_words}" if growing else surge_words
        elif growing:
            cause = "backlog growing"
        elif not sustain.active:
            cause = "no backlog growth"
        elif waiting and oldest >= answer:
            # still active, no longer growing by the window's counts (abandons count as
            # outflow), but contacts still wait past T: not "easing"
            cause = "backlog past the answer target"
        else:  # still active while the detector lets go (release): nobody waits past T
            cause = "backlog growth easing"
        queue_words = f" in {queue}" if queue else ""
        summary = (
            f"{channel}: {cause}, {waiting} waiting, oldest {format_duration(oldest)}"
            f"{queue_words} (answer target {format_duration(answer)})"
        )
        return Signal(
            detector=self.name,
            channel=channel,
            active=sustain.active,
            score=projected,
            threshold=self._horizon[channel],
            summary=summary,
            since=sustain.since,
        )
