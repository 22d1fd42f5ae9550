"""Event-to-notification latency in live mode.

A ``contact.queued`` event goes through the live ``Pipeline`` into the ``Engine``; the
wall-clock ``TickRoad`` ticks every TICK seconds; a threshold detector
(``support_queue_waiting >= 1``, the real detector suite with one threshold) makes a ``for: 0``
rule fire; the notification goes through the outbox (sqlite in a temp dir), the Slack notifier
and httpx to a local Slack-like aiohttp server, which stamps arrival before doing anything else
(the receiver's own time is excluded). The contact is
then abandoned and we wait for the resolve message before the next trial. The receiver's rate
limit is raised so it does not dominate (with the default 1/s the second message of a burst
waits up to 1 s by design).

    .venv/bin/python bench/alert_latency.py [--trials 20] [--ticks 1,0.1] [--early default,off]

``--early``: ``exporter.early_tick_seconds`` (``default`` 0.1 s: an applied event is judged at
the latest 0.1 s after the previous tick; ``off``: only aligned ticks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.alerts.runtime import Alerting
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.clock import TickRoad, run_wall_clock
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats


class Timed:
    """The real detector suite, noting the wall time of the tick that first saw the condition
    (to split the wait for a tick from the rest of the path)."""

    def __init__(self, suite: DetectorSuite) -> None:
        self.suite = suite
        self.settings = suite.settings
        self.help = suite.help
        self.first_active: float | None = None

    def evaluate(self, engine: Engine, now: float) -> list[Signal]:
        signals = self.suite.evaluate(engine, now)
        if self.first_active is None and any(
            s.active and s.detector == "queue_waiting" for s in signals
        ):
            self.first_active = time.time()
        return signals

    def series(self) -> Iterable[Series]:
        return self.suite.series()


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.event = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def hook(self, request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.json()
        self.arrivals.append((arrived, body["text"]))
        self.event.set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def next_message(self, prefix: str) -> float:
        async with asyncio.timeout(10.0):
            while True:
                for arrived, text in self.arrivals:
                    if text.startswith(prefix):
                        self.arrivals.clear()
                        return arrived
                self.event.clear()
                await self.event.wait()


def _event(kind: str, n: int, contact: str) -> bytes:
    ts = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "type": kind,
            "event_id": f"bench-{kind}-{n}",
            "ts": ts,
            "channel": "voice",
            "queue": "billing",
            "contact_id": contact,
        }
    ).encode()


async def run(
    tick: float, early: str, trials: int, state_dir: Path
) -> tuple[list[float], list[float]]:
    exporter: dict[str, object] = {"tick_seconds": tick}
    if early != "default":
        exporter["early_tick_seconds"] = None if early == "off" else float(early)
    settings = parse_settings(
        {
            "exporter": exporter,
            "detectors": {
                "thresholds": [
                    {
                        "name": "queue_waiting",
                        "metric": "support_queue_waiting",
                        "op": ">=",
                        "value": 1,
                    },
                ]
            },
            "alerts": {
                "rules": [
                    {
                        "alert": "QueueWaiting",
                        "detector": "queue_waiting",
                        "for": 0,
                        "severity": "critical",
                    }
                ]
            },
            "notifiers": {
                "receivers": {
                    "slack": {
                        "type": "slack",
                        "webhook_url": "http://placeholder",
                        "rate_per_second": 1000,
                        "burst": 100,
                    }
                },
                # the pipeline alone: no group wait, every change sent at once
                "routes": [{"receiver": "slack", "group_wait": "0s", "group_interval": "0s"}],
                "state_dir": str(state_dir),
            },
        }
    )
    receiver = Receiver()
    await receiver.start()
    notifiers = settings.notifiers.model_copy(
        update={
            "receivers": {
                "slack": settings.notifiers.receivers["slack"].model_copy(
                    update={"webhook_url": SecretStr(receiver.url)}
                )
            }
        }
    )
    engine = Engine(settings)
    stats = DaemonStats()
    alerting = Alerting(settings.detectors, settings.alerts, notifiers, engine, stats)
    source = Timed(alerting.suite)
    alerting.suite = source  # type: ignore[assignment]
    road = TickRoad(engine, tick, alerting.handlers)
    pipeline = Pipeline(engine, stats, event_clock=False)
    latencies: list[float] = []
    after_tick: list[float] = []
    tasks = [
        asyncio.create_task(
            run_wall_clock(
                road.tick,
                tick,
                stats,
                applied=pipeline.applied,
                early=settings.exporter.early_tick_seconds,
            )
        ),
        asyncio.create_task(alerting.deliver_forever()),
    ]
    try:
        await asyncio.sleep(tick * 2)
        for n in range(trials):
            await asyncio.sleep(random.uniform(0, tick))
            contact = f"c{n}"
            source.first_active = None
            t_event = time.time()
            pipeline.process("bench", Delivery(_event("contact.queued", n, contact), "bench"))
            arrived = await receiver.next_message("[FIRING]")
            latencies.append(arrived - t_event)
            assert source.first_active is not None
            after_tick.append(arrived - source.first_active)
            pipeline.process("bench", Delivery(_event("contact.abandoned", n, contact), "bench"))
            await receiver.next_message("[RESOLVED]")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await receiver.stop()
    return latencies, after_tick


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--ticks", default="1,0.1")
    parser.add_argument(
        "--early",
        default="default,off",
        help="exporter.early_tick_seconds values: 'default' (the setting's default), 'off' "
        "(aligned ticks only) or seconds, comma-separated",
    )
    args = parser.parse_args()
    import structlog  # noqa: PLC0415

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    rows = []
    cases = [(float(t), e) for t in args.ticks.split(",") for e in args.early.split(",")]
    for tick, early in cases:
        with tempfile.TemporaryDirectory() as tmp:
            lat, rest = await run(tick, early, args.trials, Path(tmp))
        rows.append(
            (
                tick,
                early,
                len(lat),
                statistics.median(lat),
                _pct(lat, 0.99),
                statistics.median(rest),
                _pct(rest, 0.99),
            )
        )
    print("event -> Slack-like receiver (arrival stamped first); 'after tick' = from the tick")
    print("that saw the condition (detector, rule, outbox commit to sqlite, HTTP)")
    print(
        f"{'tick s':>7} {'early':>8} {'trials':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'after tick p50':>15} {'after tick p99':>15}"
    )
    for tick, early, count, p50, p99, r50, r99 in rows:
        print(
            f"{tick:>7g} {early:>8} {count:>6} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} "
            f"{r50 * 1000:>15.1f} {r99 * 1000:>15.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
