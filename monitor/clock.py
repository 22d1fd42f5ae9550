"""The tick road: at aligned instants the engine's clock moves and tick handlers (detectors,
alert rules) evaluate. Live mode drives it from the wall clock, replay from event time, through
the same ``TickRoad`` so both produce the same alert timeline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from fractions import Fraction

import structlog

from support_monitor.detectors.quiet import (
    binomial_reset_horizon,
    detector_horizon,
    persistence_horizon,
)
from support_monitor.monitor.config import Settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.stats import DaemonStats

TickHandler = Callable[[float], None]


_MAX_FAILURE_KINDS = 256
_FAILURE_LOG_EVERY = 60.0  # seconds between two lines for a repeated failure of one kind


def quiet_horizon(settings: Settings) -> float:
    """How long after the last event the replay's tick road keeps stepping before it may jump.

    Past ``last event + H`` nothing the tick handlers read can change any more: every window
    has drained, every answer deadline (target + allowed lateness) is decided, an oldest-wait
    threshold has been crossed, then every detector's own persistence (``sustain``,
    ``release``), and after that every alert ``for``, ``keep_firing_for``, resolved retention
    and evaluation interval has run out. So the ticks up to the next event only repeat the same
    evaluation, and skipping them changes no output.
    """
    # The today window is left out: its reset wakes the road itself (Engine.next_wakeup), as
    # does every ticket deadline and at-risk instant (a timer of the engine), so ticket targets
    # need no ticks of their own here.
    engine = [0.0, *(span for name, span in settings.window_seconds.items() if name != "today")]
    lateness = settings.ingest.allowed_lateness
    engine.extend(
        ch.answer_seconds + lateness
        for ch in settings.channels.values()
        if ch.answer_seconds is not None
    )
    # oldest-wait thresholds (per channel), the backlog slope history, CUSUMs staying active
    engine.append(detector_horizon(settings.detectors, settings.channels))
    # a binomial CUSUM left active lets go at the first hour boundary after a silent hour
    engine.append(binomial_reset_horizon(settings.detectors, settings.channels) + lateness)
    return max(engine) + _held(settings) + 2 * settings.exporter.tick_seconds


def _held(settings: Settings) -> float:
    """How long detectors' own persistence and the alert rules remember the recent past."""
    rules = settings.alerts.rules
    return (
        persistence_horizon(settings.detectors)
        + max((r.for_ for r in rules), default=0.0)
        + max((r.keep_firing_for for r in rules), default=0.0)
        + settings.alerts.resolved_retention
        + (settings.alerts.evaluation_interval or 0.0)
    )


def wake_lookback(settings: Settings) -> float:
    """How far before a wake inside a quiet gap (``Engine.next_wakeup``) the replay's tick road
    starts ticking again, so that what detectors and rules hold of the recent past (held times,
    the backlog slope history, ``for``) is what ticking through the gap would have left."""
    backlog = settings.detectors.backlog_growth.rate_window or 0.0
    return backlog + _held(settings) + 2 * settings.exporter.tick_seconds


class TickRoad:
    def __init__(
        self,
        engine: Engine,
        interval: float,
        handlers: Sequence[TickHandler] = (),
        *,
        quiet_horizon: float | None = None,
        wake_lookback: float | None = None,
        stats: DaemonStats | None = None,
        notifying: Callable[[], bool] | None = None,
    ) -> None:
        """``quiet_horizon`` (replay only, see :func:`quiet_horizon`): once the clock has
        stepped that far past the last event, the road jumps to the next one instead of running
        every tick across the gap. ``None`` (live mode): every tick runs. ``wake_lookback``
        (:func:`wake_lookback`; default the horizon): how far before a wake inside a gap the
        road ticks again. ``stats``: where
        failing handlers are counted (``support_monitor_tick_failures_total``).
        ``notifying``: true while the notification planner may still send something without
        an event (a repeat, a group's wait or interval: ``backtest`` plans messages); no tick
        is jumped over then."""
        self.engine = engine
        self.interval = interval
        self.handlers = list(handlers)
        self.quiet_horizon = quiet_horizon
        self.wake_lookback = quiet_horizon if wake_lookback is None else wake_lookback
        self._notifying = notifying
        self.skipped_ticks = 0
        """Ticks jumped over in quiet gaps (replay)."""
        step = Fraction(interval).limit_denominator(1_000_000)
        self._num, self._den = step.numerator, step.denominator
        self._k: int | None = None
        """Replay: the index of the next tick, at ``k * interval`` (:meth:`_at`)."""
        self._last_event = -math.inf
        self._failures: dict[tuple[str, str, int], tuple[int, float]] = {}
        self._stats = stats
        if stats is not None:
            stats.tick_failures["engine.advance"] += 0  # exported at 0 from the start
        self._log = structlog.get_logger("support_monitor.clock")

    def tick(self, now: float) -> None:
        """Advance the engine and run every handler; a handler that raises is logged (with a
        traceback the first time per kind) and the others still run."""
        try:
            self.engine.advance(now)
        except Exception as exc:  # noqa: BLE001 - a defect must not stop the clock
            self._failed("engine.advance", now, exc)
        for handler in self.handlers:
            try:
                handler(now)
            except Exception as exc:  # noqa: BLE001 - a defect must not stop the clock
                self._failed(getattr(handler, "__qualname__", repr(handler)), now, exc)

    def _at(self, k: int) -> float:
        """The ``k``-th aligned instant: ``k * interval`` rounded once, so that ticks do not
        drift as adding a fractional interval tick after tick would (0.1 s is not a binary
        fraction)."""
        return k * self._num / self._den

    def _ceil(self, t: float) -> int:
        """The index of the first aligned instant at or after ``t``, as :meth:`_at` rounds
        them (a time read from an event, 10:00:00.7, is the instant that rounds alike)."""
        k = math.ceil(Fraction(t) * self._den / self._num)
        while self._at(k - 1) >= t:
            k -= 1
        while self._at(k) < t:
            k += 1
        return k

    def _floor(self, t: float) -> int:
        """The index of the last aligned instant at or before ``t``."""
        k = self._ceil(t)
        return k if self._at(k) == t else k - 1

    def catch_up(self, until: float, *, inclusive: bool) -> None:
        """Run every aligned tick before ``until`` (or at it, when inclusive), in order. With a
        ``quiet_horizon``, ticks later than ``last event + horizon`` are skipped but one: the
        last aligned tick before (or at) ``until`` still runs."""
        if self._k is None:
            self._k = self._ceil(until)
        horizon = self.quiet_horizon
        if horizon is not None and self._last_event + horizon < until:
            landing = self._floor(until)
            if self._at(landing) == until and not inclusive:
                landing -= 1
            self._cross_gap(landing, horizon)
        while self._at(self._k) < until or (inclusive and self._at(self._k) == until):
            self.tick(self._at(self._k))
            self._k += 1

    def _cross_gap(self, landing: int, horizon: float) -> None:
        """Run the ticks of a quiet gap that can still change something, up to the tick
        ``landing`` (exclusive), and jump over the others."""
        assert self._k is not None
        quiet = self._last_event + horizon
        while True:
            while self._at(self._k) <= quiet and self._k < landing:
                self.tick(self._at(self._k))
                self._k += 1
            if self._k < landing and self._notifying is not None and self._notifying():
                quiet = self._at(self._k)  # a repeat may fall in the gap: one more tick, then see
                continue
            # A timer the engine still holds (a business-time deadline days ahead, the reset
            # of the today window, a waiting contact to forget) wakes the road. Its ticks run
            # from ``wake_lookback`` before it: what detectors and rules hold of the recent
            # past (held times, `for`) is then what a tick every second would have left them.
            wake = self.engine.next_wakeup()
            if wake >= self._at(landing) or self._k >= landing:
                break
            resume = self._k
            if wake > self._at(resume):
                lookback = self.wake_lookback or 0.0
                resume = max(resume, self._floor(wake - lookback))
            self.skipped_ticks += resume - self._k
            self._k = resume
            quiet = max(wake, self._at(resume)) + horizon  # at least one tick: progress
        if landing > self._k:
            self.skipped_ticks += landing - self._k
            self._k = landing

    def before_event(self, ts: float) -> None:
        """Replay: ticks strictly before an event's time run before the event is applied.

        The first tick is the last aligned instant before the first event: detectors then see
        the counts of an engine that has applied nothing yet, so the outcomes of the first
        events count as the outcomes they are rather than as the starting point."""
        if self._k is None:
            self._k = self._ceil(ts) - 1
        if self._at(self._k) < ts:
            self.catch_up(ts, inclusive=False)
        self._last_event = max(self._last_event, ts)

    def _failed(self, where: str, now: float, exc: Exception) -> None:
        if self._stats is not None:
            self._stats.tick_failures[where] += 1
        kind = (type(exc).__qualname__, where, _raising_line(exc))
        if kind not in self._failures and len(self._failures) >= _MAX_FAILURE_KINDS:
            kind = ("other", "", 0)  # past the bound, new kinds share one rate limit
        seen = self._failures.get(kind)
        wall = time.monotonic()
        if seen is None:
            self._failures[kind] = (0, wall)
            self._log.error(
                "tick_handler_failed", handler=where, now=now, error=repr(exc)[:300], exc_info=exc
            )
            return
        repeated, last_logged = seen
        repeated += 1
        if wall - last_logged >= _FAILURE_LOG_EVERY:
            self._log.error(
                "tick_handler_failed",
                handler=where,
                now=now,
                error=repr(exc)[:300],
                repeated=repeated,
            )
            repeated, last_logged = 0, wall
        self._failures[kind] = (repeated, last_logged)


def _raising_line(exc: BaseException) -> int:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return 0 if tb is None else tb.tb_lineno


EARLY_TICK_SHARE = 0.1
"""Early ticks (``exporter.early_tick_seconds``) take at most about this share of the loop: one
runs no sooner than ten times the last tick's duration after the previous tick."""


async def run_wall_clock(
    tick: Callable[[float], None],
    interval: float,
    stats: DaemonStats,
    clock: Callable[[], float] = time.time,
    speed: float = 1.0,
    *,
    applied: asyncio.Event | None = None,
    early: float | None = None,
) -> None:
    """Live mode: ``tick`` on aligned instants of ``clock`` (every ``interval``); records how
    late each aligned wake-up was. ``clock`` runs ``speed`` times faster than the wall clock
    (the sped-up simulator).

    ``applied`` (set by the pipeline when it applies an event) and ``early`` (seconds): an
    event does not wait for the next aligned instant. The road ticks ``early`` seconds after
    the previous tick (at once when that has passed), so a rule whose input an event changed
    is judged within ``early`` of it. Early ticks never come closer together than ``early``,
    nor than 1 / ``EARLY_TICK_SHARE`` times the last tick's duration, so a busy stream costs
    at most about a tenth of the loop more; when the aligned tick comes first, it is the one.
    """
    last = -math.inf  # wall (monotonic) time the last tick started
    cost = 0.0  # how long the last tick took
    while True:
        now = clock()
        due = math.floor(now / interval) * interval + interval
        if applied is None or early is None:
            await asyncio.sleep((due - now) / speed)
        elif await _early_tick_due(
            applied, (due - now) / speed, last + max(early, cost / EARLY_TICK_SHARE)
        ):
            last = time.monotonic()
            tick(clock())
            cost = time.monotonic() - last
            continue
        woke = clock()
        stats.loop_lag_seconds = max(0.0, (woke - due) / speed)
        last = time.monotonic()
        tick(woke)
        cost = time.monotonic() - last


async def _early_tick_due(applied: asyncio.Event, until_aligned: float, earliest: float) -> bool:
    """Wait for the aligned tick (``until_aligned`` wall seconds away; False) or for an applied
    event and then ``earliest`` (monotonic), whichever comes first (True: tick early)."""
    start = time.monotonic()
    if not applied.is_set():
        try:
            async with asyncio.timeout(until_aligned):
                await applied.wait()
        except TimeoutError:
            return False
    applied.clear()
    left = until_aligned - (time.monotonic() - start)
    hold = earliest - time.monotonic()
    if hold >= left:
        await asyncio.sleep(max(0.0, left))
        return False
    if hold > 0:
        await asyncio.sleep(hold)
    return True
