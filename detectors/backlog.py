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
from collections import deque
from collections.abc import Mapping
from typing import Any

from detectors.config import BacklogGrowthSettings
from detectors.readings import Readings, WorstExport, fmt
from detectors.signal import Signal
from monitor.config import ChannelSettings


def slope(points: deque[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points; 0 with fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = math.fsum(t for t, _ in points) / n
    my = math.fsum(y for _, y in points) / n
    var = math.fsum((t - mt) ** 2 for t, _ in points)
    if var <= 0:
        return 0.0
    return math.fsum((t - mt) * (y - my) for t, y in points) / var


def seconds_to_breach(answer: float, oldest: float, rate: float) -> float:
    """Projected seconds until the oldest wait reaches ``answer`` at growth ``rate`` (s/s)."""
    remaining = answer - oldest
    if remaining <= 0:
        return 0.0
    if rate <= 0:
        return math.inf
    return remaining / min(rate, 1.0)


class BacklogGrowthDetector(WorstExport):
    """One signal per live channel (no extra labels)."""

    name = "backlog_growth"
    upward = False

    def __init__(
        self, settings: BacklogGrowthSettings, channels: list[str],
        channel_settings: Mapping[str, ChannelSettings],
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
        self._history: dict[str, deque[tuple[float, float]]] = {ch: deque() for ch in channels}

    def export_state(self) -> dict[str, object]:
        """The oldest-wait history of each channel (its growth rate is the slope over it)."""
        return {"history": {ch: [[t, y] for t, y in h] for ch, h in self._history.items()}}

    def restore_state(self, data: dict[str, Any]) -> None:
        history: dict[str, deque[tuple[float, float]]] = {ch: deque() for ch in self.channels}
        for ch, points in data["history"].items():
            if ch in history:
                history[ch] = deque((float(t), float(y)) for t, y in points)
        self._history = history

    def evaluate(self, readings: Readings) -> list[Signal]:
        now = readings.now
        out = []
        for channel in self.channels:
            oldest_rows = readings.channel_rows("support_queue_oldest_wait_seconds", channel)
            oldest = max((row.value for row in oldest_rows), default=0.0)
            head = max(oldest_rows, key=lambda row: row.value, default=None)
            waiting = int(
                sum(row.value for row in readings.channel_rows("support_queue_waiting", channel))
            )
            history = self._history[channel]
            history.append((now, oldest))
            while history and history[0][0] <= now - self._rate_window[channel]:
                history.popleft()
            rate = slope(history)
            window = readings.window_name(channel, self.settings.window)
            agg = readings.window(channel, window)
            inflow, outflow = agg.queued, agg.answered + agg.abandoned
            growing = inflow > outflow and rate > 0
            answer, horizon = self._answer[channel], self._horizon[channel]
            projected = seconds_to_breach(answer, oldest, rate) if waiting else math.inf
            active = waiting >= self.settings.min_waiting and growing and projected <= horizon
            queue = head.label("queue") if head is not None and waiting else None
            summary = (
                f"{channel}: {waiting} waiting, oldest {fmt(oldest)} s"
                + (f" in {queue}" if queue else "")
                + f", rising {fmt(rate)} s/s; {inflow} queued vs {outflow} answered or abandoned "
                f"in {window}; T = {answer:g} s reached in about {fmt(projected)} s"
            )
            out.append(
                Signal(
                    detector=self.name,
                    channel=channel,
                    active=active,
                    score=projected,
                    threshold=horizon,
                    summary=summary,
                )
            )
        return out
