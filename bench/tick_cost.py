"""Live-mode tick cost: ``TickRoad.tick`` with the real detector suite and default alert rules.

For each center size (channels x queues) the engine is fed the traffic of
``bench/backtest_week.py``'s generator at ``--rate`` contacts per second per channel, ticking
once a second of event time as the daemon does (each tick 1 to 5 ms past the second, drawn at
random, as a woken wall-clock timer gives them). After ``--warmup`` seconds (windows filled,
baselines learning, queues holding waiting contacts), the next ``--ticks`` ticks are timed one
by one with ``time.perf_counter`` (``--cpu``: ``time.thread_time``, the CPU time of this thread,
which another process on the same cores inflates less); the events between two ticks are
applied untimed. Reported: mean, median and 99th percentile per tick, and per channel.

The baseline, measured in the same run right after each timed tick: a bare pass over plain
Python lists of the same size (one oldest-queued time per queue), keeping each channel's
largest wait: the least a tick that judges every queue's oldest wait must do, with no project
code in it (the same cost on every tree), timed as the second of two passes in a row so that it
reads from warm caches. ``tick / bare`` is the mean tick over the mean bare pass: it moves far
less than the milliseconds with the speed of the machine, which on the shared test machine
varies up to 3x from one day to the next and by a quarter from one run to the next.

    .venv/bin/python bench/tick_cost.py [--sizes 10x2,20x5,100x10] [--warmup 900] [--ticks 300]
        [--cpu] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backtest_week import T0, config, generate
from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.clock import TickRoad
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode
from support_monitor.monitor.logs import configure
from support_monitor.monitor.stats import DaemonStats


def lag(rng: random.Random) -> float:
    """How late after the second a live tick runs (the timer's wake-up lag)."""
    return 0.001 + 0.004 * rng.random()


def bare_pass(center: list[list[float]], now: float) -> float:
    """The baseline: each queue's oldest-queued time read, each channel's largest wait kept."""
    total = 0.0
    for queues in center:
        largest = 0.0
        for oldest in queues:
            # a compare, not max(): docs/benchmarks-history.md took its figures with this form
            if now - oldest > largest:  # noqa: PLR1730
                largest = now - oldest
        total += largest
    return total


def run(
    channels: int,
    queues: int,
    rate: float,
    warmup: int,
    ticks: int,
    *,
    profiler: cProfile.Profile | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], list[float]]:
    """Seconds per timed tick by ``clock``, and per bare pass (:func:`bare_pass`) run right
    after each timed tick (``profiler``, if given, runs during the timed ticks only)."""
    out_dir = Path(__file__).resolve().parent / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    span = warmup + ticks + 2
    path = out_dir / f"tick-cost-{channels}x{queues}-{rate:g}-{span}.jsonl"
    if not path.exists():
        generate(path, span / 86400.0, channels, queues, rate * channels, seed=3)
    settings = parse_settings(config(channels, queues))
    engine = Engine(settings)
    stats = DaemonStats()
    alerting = Alerting(settings.detectors, settings.alerts, settings.notifiers, engine, stats)
    road = TickRoad(engine, settings.exporter.tick_seconds, alerting.handlers, stats=stats)
    timed: list[float] = []
    bare: list[float] = []
    center = [[T0 + float(q) for q in range(queues)] for _ in range(channels)]
    second = 1
    rng = random.Random(5)
    due = T0 + second + lag(rng)
    with path.open("rb") as f:
        for line in f:
            event = decode(line, 65536)
            ts = event.ts.timestamp()
            while due <= ts:
                now = due
                if second > warmup:
                    if profiler is not None:
                        profiler.enable()
                    start = clock()
                    road.tick(now)
                    timed.append(clock() - start)
                    if profiler is not None:
                        profiler.disable()
                    bare_pass(center, now)  # warm: the pass timed below reads from cache
                    start = clock()
                    bare_pass(center, now)
                    bare.append(clock() - start)
                    if len(timed) >= ticks:
                        return timed, bare
                else:
                    road.tick(now)
                second += 1
                due = T0 + second + lag(rng)
            engine.advance(ts)
            engine.apply(event, ts)
    return timed, bare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10x2,20x5,100x10")
    parser.add_argument("--rate", type=float, default=0.1, help="contacts/s per channel")
    parser.add_argument("--warmup", type=int, default=900, help="seconds before timing")
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--cpu", action="store_true", help="time CPU (thread_time), not wall")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the timed ticks")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    configure("warning")
    print(
        "| channels x queues | mean per tick | median | p99 | mean per channel "
        "| bare pass (mean) | tick / bare |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        channels, queues = (int(x) for x in size.split("x"))
        clock = time.thread_time if args.cpu else time.perf_counter
        timed, bare = run(
            channels, queues, args.rate, args.warmup, args.ticks, profiler=profiler, clock=clock
        )
        mean = statistics.fmean(timed)
        bare_mean = statistics.fmean(bare)
        p99 = sorted(timed)[int(0.99 * (len(timed) - 1))]
        print(
            f"| {channels} x {queues} | {mean * 1e3:.3f} ms | "
            f"{statistics.median(timed) * 1e3:.3f} ms | {p99 * 1e3:.3f} ms | "
            f"{mean / channels * 1e6:.1f} µs | {bare_mean * 1e6:.1f} µs | "
            f"{mean / bare_mean:,.0f} |",
            flush=True,
        )
    if profiler is not None:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
