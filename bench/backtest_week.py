"""A week-long backtest through the real replay road, timed in CPU seconds.

The center: ``--channels`` live channels (alternately voice-like, T = 20 s, and chat-like,
T = 60 s; service-level target 80%) with ``--queues`` queues each, ``--rate`` contacts per second
over the whole center (Poisson arrivals, channel and queue uniform). Each contact waits (mean 8 s
on voice, 20 s on chat; one in twenty abandons), is answered and ends after a talk of mean 3 min.
Every day from 10:00 to 10:30 UTC channel ``c00`` slows down (mean wait 60 s) and from 14:00 to
14:10 channel ``c01`` receives a burst of complaints, on top of about 4 complaints an hour per
channel. The generator is deterministic (``--seed``) and independent of the simulator; the file
is written once to ``bench/out/`` and reused.

The run is :func:`monitor.replay.replay` itself (the function behind ``support-monitor replay``)
with the default detectors and the default alert rules, stepping every aligned 1 s tick of event
time. ``--no-detectors`` switches detectors and rules off (the engine alone) for comparison.
CPU is ``time.process_time()`` around the replay (generation excluded). Time spent inside
``TickRoad.tick`` is reported separately. The baseline, in the same run: a bare ``msgspec``
decode of the same file (``bench/replay_throughput.py``'s), also in CPU seconds; the ratio
bare / replay does not move with the speed of the machine, which on the shared test machine
varies up to 3x from one day to the next.

    .venv/bin/python bench/backtest_week.py [--days 7] [--channels 20] [--queues 5]
        [--rate 1] [--seed 1] [--alerts-out FILE] [--no-detectors] [--profile FILE]
        [--config-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import heapq
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay_throughput import bare_decode
from support_monitor.detectors.config import BUILTIN_NAMES
from support_monitor.monitor import replay as replay_module
from support_monitor.monitor import road as road_module
from support_monitor.monitor.clock import TickRoad
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.logs import configure

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()  # a Monday 00:00 UTC
DAY = 86400.0
CATEGORIES = ("billing", "service", "product")


def channel_names(channels: int) -> list[str]:
    return [f"c{i:02d}" for i in range(channels)]


def config(channels: int, queues: int, *, detectors: bool = True) -> dict[str, Any]:
    chans: dict[str, Any] = {}
    for i, name in enumerate(channel_names(channels)):
        chans[name] = {
            "answer_seconds": 20 if i % 2 == 0 else 60,
            "short_abandon_seconds": 5,
            "service_level_target": 0.8,
            "queues": [f"q{j}" for j in range(queues)],
        }
    data: dict[str, Any] = {
        "windows": ["5m", "1h"],
        "channels": chans,
        "ingest": {"complaint_categories": list(CATEGORIES)},
    }
    if not detectors:
        data["detectors"] = {name: {"enabled": False} for name in BUILTIN_NAMES}
        data["detectors"]["thresholds"] = []
        data["alerts"] = {"rules": []}
    return data


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def generate(  # noqa: PLR0917 - the bench's knobs, in the order of its file name
    path: Path, days: float, channels: int, queues: int, rate: float, seed: int
) -> int:
    """Write the events in time order; returns how many."""
    rng = random.Random(seed)
    names = channel_names(channels)
    end = T0 + days * DAY
    heap: list[tuple[float, int, dict[str, Any]]] = []
    seq = 0
    written = 0

    def push(ts: float, event: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (ts, seq, event))

    complaint_rate = 4.0 / 3600.0 * channels  # complaints per second over the center
    next_complaint = T0 + rng.expovariate(complaint_rate)
    t = T0
    n = 0
    with path.open("w", encoding="utf-8") as out:
        while True:
            t += rng.expovariate(rate)
            while heap and heap[0][0] <= t:
                ts, _, event = heapq.heappop(heap)
                if ts < end:
                    event["ts"] = _iso(ts)
                    out.write(json.dumps(event, separators=(",", ":")) + "\n")
                    written += 1
            if t >= end:
                break
            n += 1
            i = rng.randrange(channels)
            channel, queue = names[i], f"q{rng.randrange(queues)}"
            day_second = (t - T0) % DAY
            mean_wait = 8.0 if i % 2 == 0 else 20.0
            if i == 0 and 36000 <= day_second < 37800:
                mean_wait = 60.0
            cid = f"k{n}"
            base = {"channel": channel, "queue": queue, "contact_id": cid}
            push(t, {"event_id": f"e{n}q", "type": "contact.queued", **base})
            wait = rng.expovariate(1.0 / mean_wait)
            if rng.random() < 0.05:
                push(t + wait, {"event_id": f"e{n}x", "type": "contact.abandoned", **base})
                continue
            push(
                t + wait,
                {
                    "event_id": f"e{n}a",
                    "type": "contact.answered",
                    **base,
                    "agent_id": f"a{rng.randrange(500)}",
                },
            )
            push(
                t + wait + rng.expovariate(1.0 / 180.0),
                {"event_id": f"e{n}e", "type": "contact.ended", **base},
            )
            while next_complaint <= t:
                spike = 50400 <= (next_complaint - T0) % DAY < 51000
                target = names[1 % channels] if spike and rng.random() < 0.8 else rng.choice(names)
                push(
                    next_complaint,
                    {
                        "event_id": f"e{n}c{seq}",
                        "type": "complaint.received",
                        "channel": target,
                        "category": rng.choice(CATEGORIES),
                    },
                )
                burst = 20.0 if 50400 <= (next_complaint - T0) % DAY < 51000 else 1.0
                next_complaint += rng.expovariate(complaint_rate * burst)
    return written


class TimedTickRoad(TickRoad):
    """The replay's own tick road, with the CPU time spent in its ticks added up."""

    spent = 0.0
    ticks = 0

    def tick(self, now: float) -> None:
        start = time.process_time()
        super().tick(now)
        TimedTickRoad.spent += time.process_time() - start
        TimedTickRoad.ticks += 1


def bare_baseline(path: Path, at_least: float = 2.0) -> tuple[int, float]:
    """Lines of ``path`` and the CPU seconds of one bare decode pass over it: the median of
    as many passes as take ``at_least`` seconds together (a short file's single pass is too
    brief to time)."""
    passes: list[float] = []
    events = 0
    while sum(passes) < at_least or len(passes) < 3:
        events, spent = bare_decode(path, time.process_time)
        passes.append(spent)
    return events, statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--queues", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1.0, help="contacts per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alerts-out", type=Path, default=None)
    parser.add_argument("--no-detectors", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument(
        "--config-out",
        type=Path,
        default=None,
        help="also write the config (JSON, which YAML reads) for support-monitor replay/backtest",
    )
    args = parser.parse_args()
    data = config(args.channels, args.queues, detectors=not args.no_detectors)
    if args.config_out is not None:
        args.config_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    configure("warning")  # one line per alert transition would dominate the run
    out_dir = Path(__file__).resolve().parent / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (
        f"backtest-{args.days:g}d-{args.channels}x{args.queues}-{args.rate:g}ps-s{args.seed}.jsonl"
    )
    if not path.exists():
        started = time.perf_counter()
        n = generate(path, args.days, args.channels, args.queues, args.rate, args.seed)
        print(f"wrote {n:,} events to {path} in {time.perf_counter() - started:.1f} s")
    events, bare = bare_baseline(path)
    settings = parse_settings(data)
    road_module.TickRoad = TimedTickRoad  # type: ignore[attr-defined] # bench-only instrumentation
    sink = args.alerts_out.open("wb") if args.alerts_out else None
    profiler = cProfile.Profile() if args.profile else None
    try:
        cpu = time.process_time()
        wall = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        asyncio.run(replay_module.replay(path, settings, alerts_out=sink))
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
    finally:
        if sink is not None:
            sink.close()
    if profiler is not None:
        profiler.dump_stats(args.profile)
    ticks, spent = TimedTickRoad.ticks, TimedTickRoad.spent
    mode = "engine only" if args.no_detectors else "default detectors and rules"
    print(f"{args.days:g} d, {args.channels} x {args.queues}, {args.rate:g} contacts/s, {mode}")
    print(f"events {events:,}  ticks {ticks:,}")
    print(
        f"replay CPU {cpu:.1f} s (wall {wall:.1f} s); in TickRoad.tick {spent:.1f} s "
        f"= {1e6 * spent / max(1, ticks):.1f} µs a tick"
    )
    print(f"bare decode of the same file: CPU {bare:.3f} s; bare / replay = {bare / cpu:.4f}")


if __name__ == "__main__":
    main()
