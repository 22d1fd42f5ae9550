"""Replay throughput: the full pipeline (decode, validate, de-duplicate, every metric update)
against a bare loop that only decodes the same file, measured in the same run on one core.

    python bench/replay_throughput.py [EVENTS] [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_events import generate
from monitor.config import parse_settings
from monitor.consume import consume
from monitor.engine.engine import Engine
from monitor.events import Event
from monitor.pipeline import Pipeline
from monitor.sources.file import FileSource
from monitor.stats import DaemonStats
from tests.support import CONFIG


def bare_decode(path: Path) -> tuple[int, float]:
    decoder = msgspec.json.Decoder(Event)
    start = time.perf_counter()
    n = 0
    with path.open("rb") as f:
        for line in f:
            event = decoder.decode(line)
            event.ts.timestamp()
            n += 1
    return n, time.perf_counter() - start


async def full_pipeline(path: Path) -> tuple[int, float, DaemonStats]:
    engine = Engine(parse_settings(CONFIG))
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    start = time.perf_counter()
    async with FileSource(path) as source:
        await consume(source, pipeline, _Discard())
    engine.flush()
    return sum(stats.events.values()), time.perf_counter() - start, stats


class _Discard:
    async def write(self, letter: object) -> None:
        del letter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("events", nargs="?", type=Path, default=Path("bench/out/events-1m.jsonl"))
    parser.add_argument("--events", dest="count", type=int, default=1_000_000)
    args = parser.parse_args()
    if not args.events.exists():
        args.events.parent.mkdir(parents=True, exist_ok=True)
        generate(args.events, args.count)
    n_bare, t_bare = bare_decode(args.events)
    n_full, t_full, stats = asyncio.run(full_pipeline(args.events))
    rejected = sum(stats.rejected.values())
    bare_rate, full_rate = n_bare / t_bare, (n_full + rejected) / t_full
    print("| loop | events | seconds | events/s |")
    print("|---|---:|---:|---:|")
    print(f"| bare decode (msgspec, same file) | {n_bare:,} | {t_bare:.2f} | {bare_rate:,.0f} |")
    print(
        f"| full pipeline (replay road) | {n_full + rejected:,} | {t_full:.2f} | {full_rate:,.0f} |"
    )
    print(f"\nratio full/bare = {full_rate / bare_rate:.2f}  (rejected: {rejected})")


if __name__ == "__main__":
    main()
