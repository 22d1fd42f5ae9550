"""Threshold detector: ``metric op value`` on a gauge of the metric contract.

It reads the exporter's own rows, so an alert on ``support_queue_oldest_wait_seconds > 120``
judges exactly what the wall board shows. Ratios and quantiles carry a minimum-volume guard (a
1-call hour at 0% service level is not an incident), and an optional ``recover`` level gives
hysteresis so a value hovering at the threshold does not flap.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from detectors.config import METRICS, ThresholdSettings
from detectors.readings import Readings, WorstExport, fmt, offered
from detectors.signal import Signal
from monitor.engine.windows import Agg

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


def _combine(values: list[float], how: str) -> float:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan
    if how == "sum":
        return math.fsum(values)
    return max(values) if how == "max" else min(values)


def _volume(agg: Agg, kind: str) -> int:
    if kind == "offered":
        return offered(agg)
    if kind == "answered":
        return agg.answered
    return agg.ratings


class ThresholdDetector(WorstExport):
    """One configured threshold instance over its channels (and queues, with ``per_queue``)."""

    def __init__(self, settings: ThresholdSettings, channels: list[str]) -> None:
        self.settings = settings
        self.name = settings.name
        self.upward = settings.upward
        self.channels = channels
        self._info = METRICS[settings.metric]
        self._op = _OPS[settings.op]
        self._active: dict[tuple[str, str], bool] = {}

    def export_state(self) -> dict[str, object]:
        """The hysteresis flags: which (channel, queue) was active at the last tick."""
        return {"active": [[ch, q, a] for (ch, q), a in self._active.items()]}

    def restore_state(self, data: dict[str, Any]) -> None:
        self._active = {(str(ch), str(q)): bool(a) for ch, q, a in data["active"]}

    def evaluate(self, readings: Readings) -> list[Signal]:
        out: list[Signal] = []
        for channel in self.channels:
            if self._info.kind == "windowed":
                out.append(self._windowed(readings, channel))
            else:
                out.extend(self._live(readings, channel))
        return out

    def _windowed(self, readings: Readings, channel: str) -> Signal:
        s = self.settings
        assert s.window is not None
        window = readings.window_name(channel, s.window)
        value = math.nan
        for row in readings.channel_rows(s.metric, channel):
            if row.label("window") == window and row.label("quantile") == s.quantile:
                value = row.value
        guard = ""
        if self._info.volume is not None:
            volume = _volume(readings.window(channel, window), self._info.volume)
            if volume < s.effective_min_volume:
                guard = (
                    f"only {volume} {self._info.volume} in {window} "
                    f"(min_volume {s.effective_min_volume})"
                )
        return self._judge(channel, "", value, guard)

    def _live(self, readings: Readings, channel: str) -> list[Signal]:
        s = self.settings
        how = s.effective_aggregate
        per_queue: dict[str, list[float]] = {}
        for row in readings.channel_rows(s.metric, channel):
            if s.sla is not None and row.label("sla") != s.sla:
                continue
            per_queue.setdefault(row.label("queue") or "default", []).append(row.value)
        queue_values = {q: _combine(vs, how) for q, vs in per_queue.items()}
        if s.per_queue:
            return [self._judge(channel, q, v, "") for q, v in sorted(queue_values.items())]
        return [self._judge(channel, "", _combine(list(queue_values.values()), how), "")]

    def _judge(self, channel: str, queue: str, value: float, guard: str) -> Signal:
        s = self.settings
        key = (channel, queue)
        was = self._active.get(key, False)
        if guard or math.isnan(value):
            active = False
        else:
            active = self._op(value, s.value) or (
                was and s.recover is not None and self._op(value, s.recover)
            )
        self._active[key] = active
        where = channel if not queue else f"{channel}/{queue}"
        metric = s.metric if s.window is None else f"{s.metric}{{window={s.window}}}"
        if guard:
            summary = f"{metric} on {where} not judged: {guard}"
        elif active and not self._op(value, s.value):
            summary = f"{metric} on {where} is {fmt(value)}, not yet back past {s.recover:g}"
        else:
            verb = "is" if active else "is not"
            summary = f"{metric} on {where} {fmt(value)} {verb} {s.op} {s.value:g}"
        return Signal(
            detector=self.name,
            channel=channel,
            active=active,
            score=value,
            threshold=s.value,
            labels=(("queue", queue),) if queue else (),
            summary=summary,
        )
