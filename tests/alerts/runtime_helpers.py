"""Alerting runtimes for the alert tests: a scripted detector suite, a runtime built around
it, delivery running in the background, and polling."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, cast

from support_monitor.alerts.runtime import Alerting
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.stats import DaemonStats
from tests.support import settings

RULE = {
    "alert": "LongWait",
    "detector": "longest_wait",
    "severity": "critical",
    "annotations": {"summary": "{channel}: waited {score:.0f}s"},
}


class Scripted:
    """A signal source whose answer the test sets."""

    def __init__(self) -> None:
        self.help: dict[str, str] = {"support_detector_score": "test"}
        self.signals: list[Signal] = []
        self.settings: Any = None
        """The detector settings, as a suite holds them (a reload compares its own with them)."""
        self.channel_settings: Any = None

    def evaluate(self, engine: Engine, now: float) -> list[Signal]:
        return list(self.signals)

    def series(self) -> list[Series]:
        return []


def make(
    url: str = "http://127.0.0.1:9/none",
    state_dir: Path | None = None,
    rule: dict[str, Any] | None = None,
    records: list[dict[str, Any]] | None = None,
    **notifiers: Any,
) -> tuple[Alerting, Scripted, DaemonStats]:
    config = {
        "receivers": {"slack": {"type": "slack", "webhook_url": url, "repeat_interval": "1h"}},
        "routes": [{"receiver": "slack", "group_wait": "0s", "group_interval": "0s"}],
        "state_dir": str(state_dir) if state_dir else None,
        "retry_for": "3650d",  # T0 is in the past of the wall clock the deliverer checks
        **notifiers,
    }
    s = settings(alerts={"rules": [rule or RULE]}, notifiers=config)
    stats = DaemonStats()

    def append_record(record: dict[str, Any]) -> None:
        assert records is not None
        records.append(record)

    alerting = Alerting(
        s.detectors,
        s.alerts,
        s.notifiers,
        Engine(s),
        stats,
        on_transition=append_record if records is not None else None,
    )
    source = Scripted()
    source.settings, source.channel_settings = s.detectors, s.channels
    # Alerting.suite is annotated DetectorSuite, but Alerting also takes any source with
    # help/evaluate/series (it filters the active signals of a source that is not a DetectorSuite)
    alerting.suite = cast("DetectorSuite", source)
    return alerting, source, stats


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def delivering(alerting: Alerting):
    task = asyncio.create_task(alerting.deliver_forever())
    await wait_for(lambda: alerting._live)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
