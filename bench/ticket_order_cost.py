"""What holding a ticket's events for the watermark costs per event.

Since 2026-12-03 every ticket event after ``ticket.created`` waits until the watermark
(``ingest.allowed_lateness``) passes it, so that one ticket's events apply in ``ts`` order. This
feeds the same ticket stream through the real pipeline (decode, checks, de-duplication, engine;
no tick road) with ``allowed_lateness: 0`` (nothing held: each event applies at once) and with
the default 5 s (every response and solve held, then applied by the watermark), alternating, and
a bare ``msgspec`` decode loop over the same lines in the same run.

The stream: a ticket created every 50 ms of event time, answered 30 s and solved 60 s after it,
in ``ts`` order (``--tickets`` tickets, three events each).

    .venv/bin/python bench/ticket_order_cost.py [--tickets 60000] [--rounds 3] 2>/dev/null
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import Event
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp()
LIFE = (("created", 0.0), ("responded", 30.0), ("solved", 60.0))


def lines(tickets: int) -> list[bytes]:
    """Three events a ticket, in ``ts`` order."""
    moves = sorted((T0 + i * 0.05 + after, kind, i) for i in range(tickets) for kind, after in LIFE)
    return [
        msgspec.json.encode(
            {
                "event_id": f"e{n}",
                "type": f"ticket.{kind}",
                "ts": datetime.fromtimestamp(ts, UTC).isoformat(),
                "channel": "email",
                "ticket_id": f"t{i}",
            }
        )
        for n, (ts, kind, i) in enumerate(moves)
    ]


def pipeline_seconds(data: list[bytes], lateness: float) -> float:
    """CPU seconds to feed ``data`` and flush, with that allowed lateness."""
    config = {
        "ingest": {"allowed_lateness": lateness},
        "channels": {"email": {"first_response_seconds": 3600, "resolution_seconds": 86400}},
    }
    engine = Engine(parse_settings(config))
    spent = feed_seconds(engine, data)
    solved = engine.channels["email"].queues["default"].solved
    if solved != len(data) // 3:
        raise SystemExit(f"lateness {lateness}: {solved} solved of {len(data) // 3}")
    return spent


def feed_seconds(engine: Engine, data: list[bytes]) -> float:
    """CPU seconds to feed ``data`` through a pipeline on ``engine`` (replay's event clock),
    taking its deferred rejects after each line, and flush."""
    pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)
    start = time.process_time()
    for position, line in enumerate(data):
        pipeline.process("bench", Delivery(line, f"line:{position}"))
        pipeline.take_deferred("bench")
    engine.flush()
    pipeline.take_deferred()
    return time.process_time() - start


def bare_seconds(data: list[bytes]) -> float:
    decoder = msgspec.json.Decoder(Event)
    start = time.process_time()
    for line in data:
        decoder.decode(line)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = lines(args.tickets)
    runs: dict[str, list[float]] = {"bare decode": [], "lateness 0": [], "lateness 5 s": []}
    for _ in range(args.rounds):
        runs["bare decode"].append(bare_seconds(data))
        runs["lateness 0"].append(pipeline_seconds(data, 0.0))
        runs["lateness 5 s"].append(pipeline_seconds(data, 5.0))
    bare = statistics.median(runs["bare decode"])
    print(f"{len(data):,} events ({args.tickets:,} tickets), median of {args.rounds} rounds\n")
    print("| road | µs an event | events/s | ratio to bare decode |")
    print("|---|---:|---:|---:|")
    for name, seconds in runs.items():
        spent = statistics.median(seconds)
        print(
            f"| {name} | {spent / len(data) * 1e6:.2f} | {len(data) / spent:,.0f} "
            f"| {bare / spent:.3f} |"
        )


if __name__ == "__main__":
    main()
