"""Backlog growth: warn while the customer is still waiting, before the answer-time breach.

Per live channel, the oldest wait w (the ``support_queue_oldest_wait_seconds`` gauge, max over
queues) must not reach T. The oldest wait grows at 1 s/s while nobody is answered and stays flat
when answers keep pace, so its recent growth rate r (least-squares slope over ``rate_window``,
clamped to 0..1) says how fast the head of the queue moves toward T. The projected time to breach
is (T - w) / r (0 once w >= T, infinite when r <= 0). Active when that projection is within
``horizon``, the queue is growing (more contacts queued than answered or abandoned in ``window``),
and at least ``min_waiting`` contacts wait. score = projected seconds, threshold = horizon.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any

from support_monitor.detectors.complaint_cusum import RateCusum
from support_monitor.detectors.config import BacklogGrowthSettings
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    WorstExport,
    fmt,
    window_index,
)
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.config_channel import ChannelSettings

SURGE_MIN_RATE_PER_HOUR = 12.0
"""The arrival CUSUM takes a usual rate below 12 contacts an hour as 12: a rise in a nearly
empty hour is no backlog, and the CUSUM falls back within an hour without arrivals."""


SURGE_MARGIN = 1.0
"""The arrival CUSUM's usual rate errs high by one standard error of its estimate: tuned for
1.4x, it drifts up on healthy traffic once the usual rate is underestimated by more than
1 - ln(1.4) / 0.4 = 16% (a 4x complaint CUSUM only past 1 - ln(4) / 3 = 54%)."""


def slope(points: deque[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points; 0 with fewer than two distinct times."""
    return _slope([t for t, _ in points], [y for _, y in points])


def _slope(ts: Sequence[float], ys: Sequence[float], cache: list[Any] | None = None) -> float:
    """``slope`` of the points ``zip(ts, ys)``: the fsum of the centred products over the fsum
    of the centred squares. ``cache`` ([centred times, their sum of squares]) keeps the
    denominator while the centred times are the same (ticks a fixed step apart)."""
    n = len(ts)
    if n < 2:
        return 0.0
    mt = math.fsum(ts) / n
    my = math.fsum(ys) / n
    # t - mt, d ** 2 and d * (y - my), term by term, mapped in C
    dt = list(map(operator.sub, ts, repeat(mt)))
    var: float
    if cache is not None and cache[0] == dt:
        var = cache[1]
    else:
        var = math.fsum(map(operator.pow, dt, repeat(2)))
        if cache is not None:
            cache[0], cache[1] = dt, var
    if var <= 0:
        return 0.0
    return math.fsum(map(operator.mul, dt, map(operator.sub, ys, repeat(my)))) / var


def seconds_to_breach(answer: float, oldest: float, rate: float) -> float:
    """Projected seconds until the oldest wait reaches ``answer`` at growth ``rate`` (s/s)."""
    remaining = answer - oldest
    if remaining <= 0:
        return 0.0
    if rate <= 0:
        return math.inf
    return remaining / min(rate, 1.0)


class _History:
    """The (time, oldest wait) points of one channel within ``rate_window``, and how many of the
    newest ones are 0 (no one waiting): when all are, the slope is 0 without summing."""

    __slots__ = ("cache", "ts", "ys", "zeros")

    def __init__(self, points: Iterable[tuple[float, float]] = ()) -> None:
        self.ts: deque[float] = deque()
        self.ys: deque[float] = deque()
        self.zeros = 0
        self.cache: list[Any] = [None, 0.0]
        for t, y in points:
            self.ts.append(t)
            self.ys.append(y)
            self.zeros = self.zeros + 1 if y == 0 else 0

    def __len__(self) -> int:
        return len(self.ts)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return zip(self.ts, self.ys, strict=True)

    def add(self, now: float, y: float, keep: float) -> None:
        ts = self.ts
        self.zeros = self.zeros + 1 if y == 0 else 0
        ts.append(now)
        self.ys.append(y)
        while ts and ts[0] <= now - keep:
            ts.popleft()
            self.ys.popleft()

    def slope(self) -> float:
        if self.zeros >= len(self.ts):
            return 0.0  # every y is 0: ``slope`` sums exact zeros to 0.0 as well
        return _slope(self.ts, self.ys, self.cache)


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
        for name in channels:
            ch = channel_settings[name]
            assert ch.answer_seconds is not None
            self._answer[name] = ch.answer_seconds
            self._horizon[name] = settings.horizon_for(ch)
            self._rate_window[name] = settings.rate_window_for(ch)
        self._window_i = window_index(windows, settings.window)
        self._window = list(windows)[self._window_i]
        self._history: dict[str, _History] = {ch: _History() for ch in channels}
        self._active: dict[str, bool] = dict.fromkeys(channels, False)
        self._surge = {ch: self._new_surge() for ch in channels}
        self._keys: list[tuple[object, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]

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

    @staticmethod
    def _slot(t: float) -> int:
        """Hour of the week in UTC (0 = Monday 00:00-01:00); 1970-01-01 was a Thursday."""
        return (math.floor(t / 3600.0) + 72) % 168

    def export_state(self) -> dict[str, object]:
        """The oldest-wait history of each channel (its growth rate is the slope over it)."""
        return {
            "history": {ch: [[t, y] for t, y in h] for ch, h in self._history.items()},
            "active": [ch for ch, a in self._active.items() if a],
            "surge": {ch: c.dump() for ch, c in self._surge.items()},
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        history: dict[str, _History] = {ch: _History() for ch in self.channels}
        for ch, points in data["history"].items():
            if ch in history:
                history[ch] = _History([(float(t), float(y)) for t, y in points])
        self._history = history
        self._active = {ch: ch in data.get("active", ()) for ch in self.channels}
        surge = {ch: self._new_surge() for ch in self.channels}
        for ch, stored in data.get("surge", {}).items():
            if ch in surge:
                surge[ch].load(stored)
        self._surge = surge
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
            surge = self._surge_step(channel, now, ch.queues.values())
            key = (oldest, head if waiting else None, waiting, rate, inflow, outflow, surge)
            if key == self._keys[i]:
                continue
            self._keys[i] = key
            out[i] = [self._judge(channel, key)]
        self._groups = out.result()
        return self._groups

    def _surge_step(self, channel: str, now: float, queues: Iterable[Any]) -> bool:
        """Advance the channel's arrival CUSUM with its cumulative queued count."""
        if self.settings.surge_threshold <= 0:
            return False
        queued = float(sum(q.queued for q in queues))
        return self._surge[channel].step(now, queued, self._slot)

    def _judge(self, channel: str, key: tuple[Any, ...]) -> Signal:
        oldest, queue, waiting, rate, inflow, outflow, surge = key
        window = self._window
        growing = inflow > outflow and rate > 0
        answer, horizon = self._answer[channel], self._horizon[channel]
        projected = seconds_to_breach(answer, oldest, rate) if waiting else math.inf
        enough = waiting >= self.settings.min_waiting
        fraction = self.settings.recover_fraction
        held = (
            self._active[channel]
            and enough
            and fraction is not None
            and oldest >= fraction * answer
        )
        active = (enough and growing and projected <= horizon) or held or surge
        self._active[channel] = active
        summary = (
            f"{channel}: {waiting} waiting, oldest {fmt(oldest)} s"
            + (f" in {queue}" if queue else "")
            + f", rising {fmt(rate)} s/s; {inflow} queued vs {outflow} answered or abandoned "
            f"in {window}; T = {answer:g} s reached in about {fmt(projected)} s"
            + (
                f"; arrivals above {self.settings.surge_ratio:g}x the usual rate for this hour"
                if surge
                else ""
            )
        )
        return Signal(
            detector=self.name,
            channel=channel,
            active=active,
            score=projected,
            threshold=horizon,
            summary=summary,
        )
