"""The one road over one engine: events in through the pipeline, the clock through the tick road
(engine advance, detectors, alert rules), notifications planned by the alert evaluation.

``run`` (``monitor.daemon.SingleEngine``), ``replay`` and ``backtest`` (``monitor.replay``) and
each partition of a cluster replica (``monitor.cluster.node.Partition``) build theirs with
:func:`build_road`; what differs between them is only what is passed in: which clock drives it
(event time in replay, the wall clock live), where alert changes and notifications go, and which
channels the rules judge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Container
from dataclasses import dataclass

from support_monitor.alerts.config import NotifierSettings
from support_monitor.alerts.runtime import Alerting, PlanSink, TransitionSink
from support_monitor.monitor.clock import TickRoad, quiet_horizon, wake_lookback
from support_monitor.monitor.config import Settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.stats import DaemonStats

__all__ = ["Road", "build_road"]


@dataclass(frozen=True, slots=True)
class Road:
    """One engine and what feeds and reads it."""

    engine: Engine
    stats: DaemonStats
    alerting: Alerting
    ticks: TickRoad
    pipeline: Pipeline


def build_road(
    settings: Settings,
    engine: Engine,
    stats: DaemonStats,
    *,
    replay: bool,
    notifiers: NotifierSettings | None = None,
    on_transition: TransitionSink | None = None,
    on_plan: PlanSink | None = None,
    channels: Callable[[], Container[str]] | None = None,
    wall_clock: Callable[[], float] = time.time,
    applied: asyncio.Event | None = None,
) -> Road:
    """``replay``: event time is the clock (each event first runs the ticks up to its time,
    quiet gaps are jumped, every reject is logged); else the wall clock is (``wall_clock``
    stamps arrival) and ticks come from the supervisor's clock task. ``notifiers``: instead of
    ``settings.notifiers``; ``channels``: the channels the rules judge (cluster ownership);
    ``applied``: the event the live pipeline sets on each applied event (shared by a cluster
    replica's partitions, whose one clock ticks them all)."""
    alerting = Alerting(
        settings.detectors,
        settings.alerts,
        settings.notifiers if notifiers is None else notifiers,
        engine,
        stats,
        on_transition=on_transition,
        on_plan=on_plan,
        channels=channels,
    )
    ticks = TickRoad(
        engine,
        settings.exporter.tick_seconds,
        alerting.handlers,
        quiet_horizon=quiet_horizon(settings) if replay else None,
        wake_lookback=wake_lookback(settings) if replay else None,
        stats=stats,
        notifying=None if on_plan is None else alerting.notifying,
    )
    if replay:
        pipeline = Pipeline(
            engine, stats, event_clock=True, before_event=ticks.before_event, log_burst=None
        )
    else:
        pipeline = Pipeline(
            engine, stats, event_clock=False, wall_clock=wall_clock, applied=applied
        )
    return Road(engine, stats, alerting, ticks, pipeline)
