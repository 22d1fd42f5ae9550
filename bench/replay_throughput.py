"""Replay throughput: what ``support-monitor replay`` runs, against a bare decode of the same file.

The full road is :func:`monitor.replay.replay` itself (the function behind the CLI command):
file source, decode, checks, de-duplication, every metric update, the tick road with the default
detectors and alert rules at every aligned tick of event time, and the final exposition. The
bare loop is a ``msgspec`` typed decode (plus the timestamp) of each line of the same file,
measured in the same run on one core.

The file is ``bench/replay_events.py``'s: 5 channels, 12 queues, about 20 events per second of
event time (1,000,000 events cover ~50,000 s, so ~50,000 ticks run). Time spent in the tick road
(``TickRoad.tick``: engine advance at the tick, detectors, rules) is timed separately and
reported as a share of the replay.

    .venv/bin/python bench/replay_throughput.py [EVENTS] [--events 1000000] [--rate 20] 2>/dev/null

(stderr has the replay's own log lines, as ``support-monitor replay`` writes them.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay_events import CONFIG, generate
from support_monitor.monitor import replay as replay_module
from support_monitor.monitor import road as road_module
from support_monitor.monitor.clock import TickRoad
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.events import Event
from support_monitor.monitor.logs import configure


def bare_decode(path: Path, clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """The baseline: each line of ``path`` decoded to a typed event and its timestamp read;
    how many lines, and how long by ``clock``."""
    decoder = msgspec.json.Decoder(Event)
    start = clock()
    n = 0
    with path.open("rb") as f:
        for line in f:
            event = decoder.decode(line)
            event.ts.timestamp()
            n += 1
    return n, clock() - start


class TimedTickRoad(TickRoad):
    """The replay's own tick road, with the time spent in its ticks added up."""

    spent = 0.0
    ticks = 0

    def tick(self, now: float) -> None:
        start = time.perf_counter()
        super().tick(now)
        TimedTickRoad.spent += time.perf_counter() - start
        TimedTickRoad.ticks += 1


def full_replay(path: Path) -> tuple[float, bytes]:
    settings = parse_settings(CONFIG)
    # As the CLI sets it up: JSON lines on stderr (alert transitions are logged at info).
    configure(settings.logging.level, "json")
    road_module.TickRoad = TimedTickRoad  # type: ignore[attr-defined] # bench-only instrumentation
    start = time.perf_counter()
    text = asyncio.run(replay_module.replay(path, settings))
    return time.perf_counter() - start, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("events", nargs="?", type=Path, default=None)
    parser.add_argument("--events", dest="count", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second of event time")
    args = parser.parse_args()
    path = args.events or Path(f"bench/out/replay-{args.rate:g}ps-{args.count}.jsonl")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(path, args.count, args.rate)
    n_bare, t_bare = bare_decode(path)
    t_full, text = full_replay(path)
    bare_rate, full_rate = n_bare / t_bare, n_bare / t_full
    tick_share = TimedTickRoad.spent / t_full
    print("| loop | events | seconds | events/s |")
    print("|---|---:|---:|---:|")
    print(f"| bare decode (msgspec, same file) | {n_bare:,} | {t_bare:.2f} | {bare_rate:,.0f} |")
    print(
        f"| `monitor.replay.replay` (the CLI's road) | {n_bare:,} | {t_full:.2f} | "
        f"{full_rate:,.0f} |"
    )
    print(f"\nratio replay/bare = {full_rate / bare_rate:.3f} (target >= 1/6 = 0.167)")
    per_tick = 1e6 * TimedTickRoad.spent / max(1, TimedTickRoad.ticks)
    print(
        f"tick road: {TimedTickRoad.ticks:,} ticks, {TimedTickRoad.spent:.2f} s = "
        f"{tick_share:.0%} of the replay ({per_tick:.0f} µs a tick)"
    )
    print(f"exposition: {len(text):,} bytes")


if __name__ == "__main__":
    main()
