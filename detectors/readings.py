"""One tick's view of the engine, shared by every detector of the suite.

Detectors judge the very numbers a scrape of ``/metrics`` shows at that instant, so they read the
exporter's rows (``monitor.engine.readout.series``), built once per tick and indexed by name, and
the window totals (counts) for their volume guards and burn rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Protocol

from detectors.config import resolve_window
from detectors.signal import Signal
from monitor.engine.engine import Engine
from monitor.engine.readout import Series, series
from monitor.engine.windows import Agg


class Readings:
    """The exporter's rows at ``now`` (lazily indexed by metric name) and the window totals."""

    def __init__(self, engine: Engine, now: float) -> None:
        self.engine = engine
        self.now = now
        self._index: dict[str, dict[str, list[Series]]] | None = None

    def _by_name(self) -> dict[str, dict[str, list[Series]]]:
        """Rows by metric name, then channel: built once per tick, read by every detector."""
        if self._index is None:
            index: dict[str, dict[str, list[Series]]] = {}
            for row in series(self.engine):
                channels = index.setdefault(row.name, {})
                channels.setdefault(row.label("channel") or "", []).append(row)
            self._index = index
        return self._index

    def rows(self, name: str) -> list[Series]:
        return [row for rows in self._by_name().get(name, {}).values() for row in rows]

    def channel_rows(self, name: str, channel: str) -> list[Series]:
        return self._by_name().get(name, {}).get(channel, [])

    def window_name(self, channel: str, window: str) -> str:
        """The configured window a name (or ``shortest``/``longest``) stands for."""
        return resolve_window(window, self.engine.channels[channel].windows.names)

    def window(self, channel: str, window: str) -> Agg:
        return self.engine.channels[channel].windows.total(self.window_name(channel, window))


class Detector(Protocol):
    """A pure state machine: ``evaluate`` once per tick, in time order."""

    name: str
    upward: bool
    """True when a higher score is worse (the exported row is the worst signal)."""

    def evaluate(self, readings: Readings) -> list[Signal]: ...

    def export(self, signals: list[Signal]) -> Signal:
        """The one signal of a channel the gauges show."""
        ...


class WorstExport:
    """Default export: the worst signal of the channel (see ``worst``)."""

    upward: bool

    def export(self, signals: list[Signal]) -> Signal:
        return worst(signals, self.upward)


def offered(agg: Agg) -> int:
    """Contacts the service level is judged on: answered + abandoned - short abandoned."""
    return agg.answered + agg.abandoned - agg.abandoned_short


def margin(signal: Signal, upward: bool) -> float:
    """How far past (positive) or short of (negative) its threshold a signal is, relative."""
    if math.isnan(signal.score):
        return -math.inf
    diff = signal.score - signal.threshold if upward else signal.threshold - signal.score
    if math.isinf(diff):
        return diff
    return diff / max(abs(signal.threshold), 1e-9)


def worst(signals: Iterable[Signal], upward: bool) -> Signal:
    """The signal a per-channel gauge shows: an active one first, then the largest margin."""
    key: Callable[[Signal], tuple[bool, float]] = lambda s: (s.active, margin(s, upward))  # noqa: E731
    return max(signals, key=key)


def fmt(value: float) -> str:
    """Numbers in summaries: short, and ``n/a`` for NaN."""
    return "n/a" if math.isnan(value) else f"{value:.3g}"
