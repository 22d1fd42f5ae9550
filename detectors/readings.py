"""One tick's view of the engine, shared by every detector of the suite.

Detectors judge the very numbers a scrape of ``/metrics`` shows at that instant, but they do not
build the exporter's rows: each reads exactly the values it needs straight from the engine's
channel, queue and window objects, with the expressions the rows are made of
(``monitor.engine.readout.LIVE_GAUGES`` / ``WINDOW_GAUGES``, ``service_level`` ...). Window
names (and the ``shortest``/``longest`` aliases) are resolved to positions once, when a detector
is built.

Each detector returns one list of signals per channel it judges, in a fixed order, and hands out
the same list object (and the same outer list) again while nothing it read has changed, so the
suite and the alert rules skip that channel by an identity check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from support_monitor.detectors.config import resolve_window
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import oldest_wait
from support_monitor.monitor.engine.state import ChannelRuntime
from support_monitor.monitor.engine.windows import Agg

Groups = list[list[Signal]]
"""A detector's signals, one list per channel of its scope, in scope order."""


class GroupsUpdate:
    """One tick's groups of a detector, copied on the first write: ``result()`` is the previous
    list itself when no channel changed (the suite skips a detector whose list is the same
    object), else a copy with the changed channels' groups replaced."""

    __slots__ = ("_new", "_old")

    def __init__(self, previous: Groups) -> None:
        self._old = previous
        self._new: Groups | None = None

    def __setitem__(self, index: int, signals: list[Signal]) -> None:
        if self._new is None:
            self._new = list(self._old)
        self._new[index] = signals

    def result(self) -> Groups:
        return self._old if self._new is None else self._new


class Readings:
    """The engine at ``now``: its channels, read directly."""

    __slots__ = ("_waits", "channels", "engine", "now")

    def __init__(self, engine: Engine, now: float) -> None:
        self.engine = engine
        self.now = now
        self.channels: dict[str, ChannelRuntime] = engine.channels
        self._waits: dict[str, tuple[tuple[float, ...], int]] = {}

    def waits(self, channel: str) -> tuple[tuple[float, ...], int]:
        """The ``support_queue_oldest_wait_seconds`` value of each of the channel's queues (in
        ``queues`` order) and how many contacts wait in all of them; read once per tick and
        shared by the detectors that need them."""
        got = self._waits.get(channel)
        if got is None:
            now = self.now
            waiting = 0
            values = []
            for q in self.channels[channel].queues.values():
                if q.waiting:
                    values.append(oldest_wait(q, now))
                    waiting += len(q.waiting)
                else:
                    values.append(0.0)  # what oldest_wait says for an empty queue
            got = self._waits[channel] = (tuple(values), waiting)
        return got

    def window_name(self, channel: str, window: str) -> str:
        """The configured window a name (or ``shortest``/``longest``) stands for."""
        return resolve_window(window, self.channels[channel].windows.names)

    def window(self, channel: str, window: str) -> Agg:
        return self.channels[channel].windows.total(self.window_name(channel, window))


def window_index(windows: Sequence[str], window: str) -> int:
    """Position of a configured window (alias resolved) in every channel's ``windows.totals``."""
    return list(windows).index(resolve_window(window, windows))


class Detector(Protocol):
    """A pure state machine: ``evaluate`` once per tick, in time order. A detector may also
    have ``sustained_words`` (summary suffix, description sentence): what alert texts say of a
    signal its sustained-change test made active, instead of the generic wording."""

    name: str
    upward: bool
    """True when a higher score is worse (the exported row is the worst signal)."""
    channels: list[str]

    def evaluate(self, readings: Readings) -> Groups:
        """One list of signals per channel of ``channels``; an unchanged channel's list (and, if
        no channel changed, the outer list) is the very object returned at the last tick."""
        ...

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


def same(a: float, b: float) -> bool:
    """Equal, counting NaN as equal to NaN (an input that stays NaN has not changed)."""
    return a == b or (a != a and b != b)  # noqa: PLR0124 - the NaN test


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
