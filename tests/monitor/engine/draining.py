"""``run`` for engine tests: the pipeline with event time as the clock, deferred rejects counted.

Held early outcomes that never meet their opening event become rejects later than their own
``process`` call (see ``Engine.take_expired_early``). Here they are counted as the pipeline
counts a reject. When the pipeline drains them itself, nothing is left here to count twice."""

from __future__ import annotations

from support_monitor.monitor.config import Settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import T0, settings


def run(
    lines: list[bytes],
    cfg: Settings | None = None,
    until: float | None = None,
    *,
    exact_end: bool = False,
) -> tuple[Engine, DaemonStats]:
    """Feed ``lines`` through the pipeline, then ``flush(T0 + until)`` (or at the clock);
    ``exact_end``: then cut the windows exactly at the clock, as ``replay`` does at its end."""
    engine = Engine(cfg or settings(), exact_end=exact_end)
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)

    def drain() -> None:  # as the daemon: deferred rejects and late-applied outcomes counted
        pipeline.take_deferred()

    for i, line in enumerate(lines):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
        drain()
    engine.flush(None if until is None else T0 + until)
    drain()
    if exact_end:
        engine.end_at(engine.now)
    return engine, stats
