"""Tick cost against the size of the ticket backlog: does a tick grow with the open tickets?

For each ``--tickets`` N, one email queue pair gets N tickets created evenly over the first
hour (a third of them answered a minute later), with a 1 h first-response target, so from
minute 60 on the unanswered two thirds pass their deadline one after the other while the
``tickets_at_risk`` first-response signal is active. ``TickRoad.tick`` (engine advance, the
default detectors, the default rules) runs once a second of event time for 2.5 hours, the
events between two ticks applied untimed. Reported per N: the mean tick over minutes 60-120
(deadlines passing) and over the whole run, the largest tick, and the mean tick over the mean
of ``bench/tick_cost.py``'s bare pass timed right after each tick (``tick / bare``).

    .venv/bin/python bench/ticket_backlog.py [--tickets 2000 20000 100000]

A tick that costs only what changed is flat in N. The timer heap's clean-up is spread over the
decisions (``monitor.engine.timers``), so the largest tick is now a full garbage collection
(the engine's tickets, dictionaries and heaps walked) or a tick where many deadlines pass.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tick_cost import bare_pass
from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.clock import TickRoad
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import Event, decode
from support_monitor.monitor.logs import configure
from support_monitor.monitor.stats import DaemonStats

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp()
CONFIG = {
    "channels": {
        "email": {
            "first_response_seconds": 3600,
            "resolution_seconds": 86400,
            "queues": ["default", "billing"],
        },
        "voice": {"answer_seconds": 20, "queues": ["main"]},
    }
}


def events(n: int) -> list[tuple[float, Event]]:
    """N tickets over the first hour, every third answered a minute after it was created."""
    rng = random.Random(1)
    out: list[tuple[float, dict[str, object]]] = []
    for i in range(n):
        t = T0 + 3600 * i / n
        queue = rng.choice(("default", "billing"))
        out.append((t, {"type": "ticket.created", "ticket_id": f"t{i}", "queue": queue}))
        if i % 3 == 0:
            out.append((t + 60, {"type": "ticket.responded", "ticket_id": f"t{i}"}))
    out.sort(key=lambda e: e[0])
    decoded = []
    for k, (t, body) in enumerate(out):
        stamp = datetime.fromtimestamp(t, UTC).isoformat()
        line = {"event_id": f"e{k}", "ts": stamp, "channel": "email", **body}
        decoded.append((t, decode(msgspec.json.encode(line), 65536)))
    return decoded


def run(n: int) -> tuple[list[float], list[float]]:
    """Seconds per tick (one a second for 2.5 h) and per bare pass timed after each."""
    settings = parse_settings(CONFIG)
    engine = Engine(settings)
    stats = DaemonStats()
    alerting = Alerting(settings.detectors, settings.alerts, settings.notifiers, engine, stats)
    road = TickRoad(engine, settings.exporter.tick_seconds, alerting.handlers, stats=stats)
    stream = events(n)
    center = [[T0, T0 + 1.0], [T0]]
    ticks: list[float] = []
    bare: list[float] = []
    i = 0
    for second in range(1, 9001):
        now = T0 + second
        while i < len(stream) and stream[i][0] <= now:
            ts, event = stream[i]
            engine.advance(ts)
            engine.apply(event, ts)
            i += 1
        start = time.perf_counter()
        road.tick(now + 0.002)
        ticks.append(time.perf_counter() - start)
        bare_pass(center, now)
        start = time.perf_counter()
        bare_pass(center, now)
        bare.append(time.perf_counter() - start)
    return ticks, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[2000, 20000, 100000])
    args = parser.parse_args()
    configure("warning", "json")
    print("| open tickets | tick, minutes 60-120 | tick, whole run | largest tick | tick / bare |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.tickets:
        ticks, bare = run(n)
        passing = statistics.mean(ticks[3600:7200])
        whole = statistics.mean(ticks)
        ratio = whole / statistics.mean(bare)
        print(
            f"| {n:,} | {1e3 * passing:.3f} ms | {1e3 * whole:.3f} ms | "
            f"{1e3 * max(ticks):.1f} ms | {ratio:,.0f} |"
        )


if __name__ == "__main__":
    main()
