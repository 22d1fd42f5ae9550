"""A console on a real listener over a replayed scenario, for the API and browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.registry import CollectorRegistry

from support_monitor.alerts.runtime import Alerting
from support_monitor.alerts.silences import AckSigner, ConsoleStore, PlannerHolds
from support_monitor.monitor.console import Console, Timeline
from support_monitor.monitor.console.setup import open_console
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.http import MetricsServer
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.helpers import sig
from tests.support import T0, Stream, settings

TOKEN = "console-test-token-0123456789"
RULES = [{"alert": "LongWait", "detector": "longest_wait", "severity": "critical"}]


def scenario() -> Stream:
    """Voice: c1 answered after 15 s (T = 20 s: in SLA), c2 abandoned after 30 s (not short),
    c3 still waiting; two ratings (5 and 2) and one complaint. Email: two tickets, one solved."""
    s = Stream()
    s.add("contact.queued", 0, "voice", contact_id="c1", queue="billing")
    s.add("contact.queued", 10, "voice", contact_id="c2", queue="billing")
    s.add("contact.queued", 20, "voice", contact_id="c3", queue="tech")
    s.add("contact.answered", 15, "voice", contact_id="c1")
    s.add("contact.abandoned", 40, "voice", contact_id="c2")
    s.add("ticket.rated", 50, "voice", rating=5)
    s.add("ticket.rated", 51, "voice", rating=2)
    s.add("complaint.received", 52, "voice", category="billing", contact_id="c1")
    s.add("ticket.created", 1, "email", ticket_id="t1")
    s.add("ticket.created", 2, "email", ticket_id="t2")
    s.add("ticket.solved", 60, "email", ticket_id="t2")
    return s


@dataclass
class Running:
    base: str
    engine: Engine
    pipeline: Pipeline
    alerting: Alerting
    console: Console
    signer: AckSigner
    timeline: Timeline
    console_store: ConsoleStore

    def feed(self, *lines: bytes) -> None:
        for i, line in enumerate(lines):
            self.pipeline.process("test", Delivery(line, f"extra:{i}"))

    def fire(self, at: float) -> str:
        """Make LongWait fire on voice at ``T0 + at``; returns its fingerprint."""
        self.alerting.apply(T0 + at, [sig("longest_wait", "voice", score=80.0, threshold=20.0)])
        (alert,) = [a for rule in self.alerting.rules for a in rule.alerts()]
        return alert.fingerprint


@asynccontextmanager
async def running_console(
    state_dir: Path,
    *,
    token: str | None = TOKEN,
    until: float = 100.0,
    config: dict[str, Any] | None = None,
    **console: Any,
) -> AsyncIterator[Running]:
    """``config``: more top-level settings (e.g. ``channels``) for the daemon's config."""
    console_cfg: dict[str, Any] = {"external_url": "https://monitor.example", **console}
    if token is not None:
        token_file = state_dir / "token"
        token_file.write_text(token + "\n")
        console_cfg["api_token_file"] = str(token_file)
    cfg = settings(
        alerts={"rules": RULES},
        notifiers={"state_dir": str(state_dir)},
        console=console_cfg,
        **(config or {}),
    )
    engine = Engine(cfg)
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    for i, line in enumerate(scenario().lines):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    engine.flush(T0 + until)
    timeline = Timeline(cfg.console.timeline_size)
    alerting = Alerting(
        cfg.detectors, cfg.alerts, cfg.notifiers, engine, stats, on_transition=timeline
    )
    async with AsyncExitStack() as stack:
        console_app = await open_console(stack, cfg, engine, alerting, timeline)
        assert console_app is not None
        server = await stack.enter_async_context(
            MetricsServer(CollectorRegistry(), "127.0.0.1:0", lambda: True, mounted=console_app)
        )
        holds = alerting.planner.holds
        assert isinstance(holds, PlannerHolds)
        assert holds.signer is not None
        yield Running(
            f"http://127.0.0.1:{server.port}",
            engine,
            pipeline,
            alerting,
            console_app,
            holds.signer,
            timeline,
            holds.store,
        )
