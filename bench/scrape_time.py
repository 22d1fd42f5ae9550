"""Scrape time: how long ``/metrics`` takes to render from live engine state.

State comes from replaying the benchmark event file (default first 200,000 events), so the
engine holds real open contacts, tickets, window buckets and sketches. The exposition is built
in the event loop, so its time is time the loop is not applying events.

    python bench/scrape_time.py [EVENTS] [--events 200000] [--scrapes 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)

from alerts.runtime import Alerting
from bench.gen_events import generate
from monitor.config import parse_settings
from monitor.engine.engine import Engine
from monitor.pipeline import Delivery, Pipeline
from monitor.registry import build_registry
from monitor.stats import DaemonStats
from tests.support import CONFIG


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("events", nargs="?", type=Path, default=Path("bench/out/events-1m.jsonl"))
    parser.add_argument("--events", dest="count", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    if not args.events.exists():
        args.events.parent.mkdir(parents=True, exist_ok=True)
        generate(args.events, 1_000_000)
    settings = parse_settings(CONFIG)
    engine = Engine(settings)
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    with args.events.open("rb") as f:
        for n, line in enumerate(f):
            if n >= args.count:
                break
            pipeline.process("bench", Delivery(line, "x"))
    alerting = Alerting(settings.detectors, settings.alerts, settings.notifiers, engine, stats)
    registry = build_registry(engine, stats, alerting)
    for label, render in (("text 0.0.4", generate_latest), ("OpenMetrics", generate_openmetrics)):
        times = []
        for _ in range(args.scrapes):
            start = time.perf_counter()
            body = render(registry)
            times.append(time.perf_counter() - start)
        times.sort()
        p50 = statistics.median(times) * 1000
        p99 = times[int(len(times) * 0.99) - 1] * 1000
        lines = body.count(b"\n")
        print(f"| {label} | {lines} lines | {len(body) / 1024:.0f} KiB | "
              f"p50 {p50:.2f} ms | p99 {p99:.2f} ms |")
    open_contacts = len(engine.contacts)
    print(f"\nstate: {open_contacts} open contacts, {len(engine.tickets)} tickets")


if __name__ == "__main__":
    main()
