"""Scrape time: how long ``/metrics`` takes to render from live engine state.

Two sizes: the default config (``--channels 0``: the built-in voice/chat/email channels, state
from the first ``--events`` events of ``bench/out/events-1m.jsonl``), and a large one
(``--channels N --queues M``: N channels of M queues, every other channel live with
``answer_seconds``, the rest ticket channels with first-response and resolution targets;
state from ``--events`` synthetic events spread over every queue). The engine then holds real
open contacts, tickets, window buckets and sketches. Between two scrapes ``--between`` more
events are applied (default 750: 15 s of event time at the large state's 50 events/s, one
Prometheus scrape interval), outside the timed part, so the histograms and windows a scrape
reads have moved as in a live daemon. Each scrape renders the whole registry the daemon serves
(engine, alerting, daemon and capacity collectors) with ``monitor.exporter.render`` and the
encoder ``/metrics`` uses, in the event loop, so its time is time the loop is not applying
events. The first scrape (which builds the kept label texts) is reported separately.

``--freeze`` says where the heap is frozen out of the cyclic GC's reach as the daemon does
(``monitor.supervise``): ``keeper`` (the default, what the daemon does) at start-up as
``start`` below, then again before a scrape whenever a full collection ran since the last
freeze (``HeapKeeper`` does it within a second); ``start`` once the engine, rules and registry
are built and before the state's events are applied, as in a daemon that started empty and
built its state live; ``state`` after they are applied, as in a daemon restarted from
a snapshot of that state; ``none`` never (what every full collection walked before). The event
lines the benchmark holds are a tuple of bytes, which the collector stops tracking, so in no
mode does it walk the benchmark's own input. Reported with each format: the full (generation
2) collections that ran during the timed scrapes and the longest one, and the longest full
collection anywhere in the run (events included): a pause of the event loop either way. Beside
the wall-clock percentiles, the scrape's and the collections' CPU time (``time.thread_time``):
on a shared machine a wall-clock scrape also holds the time a neighbour had the core.

    .venv/bin/python bench/scrape_time.py                       # default config
    .venv/bin/python bench/scrape_time.py --channels 100 --queues 10 [--freeze none] [--baseline]

``--baseline``: after each scrape, prometheus_client's own encoder writes the same samples
(collected into plain ``Metric`` objects, untimed) and the scrape's CPU time is reported as a
ratio to that encoder's, median over the scrapes: a figure that a slower or busier machine
moves much less than it moves milliseconds (the two are timed back to back).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)
from prometheus_client.registry import Collector

from bench.gen_events import generate
from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.exporter import render
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.registry import build_registry
from support_monitor.monitor.stats import DaemonStats
from support_monitor.monitor.supervise import freeze_heap
from tests.support import CONFIG

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


class FullCollections:
    """Durations (seconds of this thread's CPU time, which a busy neighbour on a shared machine
    does not inflate) of the generation-2 collections since the last ``take()``."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:  # the oldest generation
            return
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.durations.append(time.thread_time() - self._start)

    def take(self) -> list[float]:
        out, self.durations = self.durations, []
        return out


class Plain(Collector):
    """The baseline: the registry's families as plain prometheus_client ``Metric`` objects with
    their ``Sample`` lists, collected by :meth:`refill` (untimed) right after a scrape, so that
    the encoder alone is timed over the very samples the scrape wrote."""

    def __init__(self, registry: Collector) -> None:
        self._registry = registry
        self._metrics: list[Metric] = []

    def refill(self) -> None:
        self._metrics = []
        for family in self._registry.collect():
            plain = Metric(family.name, family.documentation, family.type)
            plain.samples = list(family.samples)
            self._metrics.append(plain)

    def collect(self) -> list[Metric]:
        return self._metrics


def large_config(channels: int, queues: int) -> dict[str, Any]:
    """N channels x M queues: even-numbered channels live, odd ones ticket channels."""
    out: dict[str, Any] = {}
    for i in range(channels):
        names = [f"q{j}" for j in range(queues)]
        if i % 2 == 0:
            out[f"live{i}"] = {
                "answer_seconds": 20 + i % 5 * 10,
                "short_abandon_seconds": 5,
                "service_level_target": 0.8,
                "queues": names,
            }
        else:
            out[f"tickets{i}"] = {
                "first_response_seconds": 3600,
                "resolution_seconds": 86400,
                "queues": names,
            }
    return {"windows": ["5m", "1h"], "channels": out}


def large_events(cfg: dict[str, Any], count: int, seed: int = 1) -> list[bytes]:
    """Contacts and tickets on every queue: queued/answered/ended/abandoned, created/responded/
    solved, ratings; ~50 events a second of event time."""
    rng = random.Random(seed)
    live = [(ch, c["queues"]) for ch, c in cfg["channels"].items() if "answer_seconds" in c]
    tickets = [(ch, c["queues"]) for ch, c in cfg["channels"].items() if "answer_seconds" not in c]
    waiting: list[tuple[str, str]] = []
    talking: list[tuple[str, str]] = []
    open_tickets: list[tuple[str, str]] = []
    lines: list[bytes] = []
    now = T0
    for n in range(count):
        now += rng.expovariate(50.0)
        ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        roll = rng.random()
        event: dict[str, Any]
        if roll < 0.3 or (roll < 0.45 and not waiting):
            ch, queues = live[rng.randrange(len(live))]
            waiting.append((f"c{n}", ch))
            event = {
                "type": "contact.queued",
                "channel": ch,
                "queue": rng.choice(queues),
                "contact_id": f"c{n}",
            }
        elif roll < 0.45:
            cid, ch = waiting.pop(rng.randrange(len(waiting)))
            talking.append((cid, ch))
            kind = "contact.answered" if rng.random() < 0.9 else "contact.abandoned"
            if kind == "contact.abandoned":
                talking.pop()
            event = {"type": kind, "channel": ch, "contact_id": cid}
        elif roll < 0.55 and talking:
            cid, ch = talking.pop(rng.randrange(len(talking)))
            event = {"type": "contact.ended", "channel": ch, "contact_id": cid}
        elif roll < 0.75 or not open_tickets:
            ch, queues = tickets[rng.randrange(len(tickets))]
            open_tickets.append((f"t{n}", ch))
            event = {
                "type": "ticket.created",
                "channel": ch,
                "queue": rng.choice(queues),
                "ticket_id": f"t{n}",
            }
        elif roll < 0.85:
            tid, ch = open_tickets[rng.randrange(len(open_tickets))]
            event = {"type": "ticket.responded", "channel": ch, "ticket_id": tid}
        elif roll < 0.95:
            tid, ch = open_tickets.pop(rng.randrange(len(open_tickets)))
            event = {"type": "ticket.solved", "channel": ch, "ticket_id": tid}
        else:
            ch, _ = tickets[rng.randrange(len(tickets))]
            event = {"type": "ticket.rated", "channel": ch, "rating": rng.randint(1, 5)}
        lines.append(json.dumps({"event_id": f"e{n}", "ts": ts, **event}).encode())
    return lines


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "events_file", nargs="?", type=Path, default=Path("bench/out/events-1m.jsonl")
    )
    parser.add_argument("--events", dest="count", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--channels", type=int, default=0, help="0: the default config")
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--between", type=int, default=750, help="events applied between scrapes")
    parser.add_argument("--freeze", choices=("keeper", "start", "state", "none"), default="keeper")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="after each scrape, time prometheus_client's encoder over the same samples",
    )
    return parser.parse_args()


def workload(args: argparse.Namespace) -> tuple[dict[str, Any], tuple[bytes, ...]]:
    """The config and every event line the run applies (the state's, then those between
    scrapes)."""
    extra = args.between * (2 * args.scrapes + 1)
    if args.channels:
        cfg = large_config(args.channels, args.queues)
        return cfg, tuple(large_events(cfg, args.count + extra))
    if not args.events_file.exists():
        args.events_file.parent.mkdir(parents=True, exist_ok=True)
        generate(args.events_file, 1_000_000)
    with args.events_file.open("rb") as f:
        return CONFIG, tuple(line for _, line in zip(range(args.count + extra), f, strict=False))


def main() -> None:
    args = arguments()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    cfg, lines = workload(args)
    settings = parse_settings(cfg)
    engine = Engine(settings)
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    alerting = Alerting(settings.detectors, settings.alerts, settings.notifiers, engine, stats)
    registry = build_registry(engine, stats, alerting)
    if args.freeze in {"keeper", "start"}:
        freeze_heap("start")
    more = iter(lines)
    for line in islice(more, args.count):
        pipeline.process("bench", Delivery(line, "x"))
    alerting.evaluate(engine.now)
    if args.freeze == "state":
        freeze_heap("start")
    full = FullCollections()
    gc.callbacks.append(full)
    start = time.perf_counter()
    render(registry)
    first = time.perf_counter() - start
    print(
        f"{len(settings.channels)} channels, "
        f"{sum(len(ch.queues) for ch in engine.channels.values())} queues, "
        f"{len(engine.contacts)} open contacts, {len(engine.tickets)} tickets, "
        f"rejected {sum(stats.rejected.values())}; freeze: {args.freeze}, "
        f"frozen objects {gc.get_freeze_count()}"
    )
    print(f"first scrape (builds the kept label texts): {first * 1000:.1f} ms")
    bare = Plain(registry)
    for label, encoder in (
        ("text 0.0.4", generate_latest),
        ("OpenMetrics", generate_openmetrics),
    ):
        times = []
        cpu = []
        ratios = []
        in_scrapes: list[float] = []
        anywhere: list[float] = full.take()
        collected = bool(anywhere)
        for _ in range(args.scrapes):
            for line in islice(more, args.between):
                pipeline.process("bench", Delivery(line, "x"))
            since = full.take()
            collected = collected or bool(since)
            if args.freeze == "keeper" and collected:
                gc.freeze()  # as HeapKeeper: what survived a full collection is frozen
                collected = False
            anywhere += since
            start, start_cpu = time.perf_counter(), time.thread_time()
            body = render(registry, encoder)
            times.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            during = full.take()
            collected = collected or bool(during)
            in_scrapes += during
            if args.baseline:
                bare.refill()
                start_cpu = time.thread_time()
                encoder(bare)
                ratios.append(cpu[-1] / (time.thread_time() - start_cpu))
                full.take()  # the baseline's own collections are not the scrape's
        anywhere += in_scrapes
        times.sort()
        cpu.sort()
        p50 = statistics.median(times) * 1000
        p99 = times[max(0, int(len(times) * 0.99) - 1)] * 1000
        cpu50 = statistics.median(cpu) * 1000
        cpu99 = cpu[max(0, int(len(cpu) * 0.99) - 1)] * 1000
        lines_out = body.count(b"\n")
        print(
            f"| {label} | {lines_out} lines | {len(body) / 1024:.0f} KiB | "
            f"p50 {p50:.1f} ms | p99 {p99:.1f} ms | CPU p50 {cpu50:.1f} ms | "
            f"CPU p99 {cpu99:.1f} ms | full collections in scrapes "
            f"{len(in_scrapes)} (longest {max(in_scrapes, default=0) * 1000:.1f} ms), "
            f"anywhere {len(anywhere)} (longest {max(anywhere, default=0) * 1000:.1f} ms) |"
            + (f" CPU / bare encode: median {statistics.median(ratios):.3f} |" if ratios else "")
        )


if __name__ == "__main__":
    main()
