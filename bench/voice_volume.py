"""Customer-voice detectors under volume: the binomial critical counts at large windows.

``negative_sentiment``, ``nps_drop`` and ``containment_drop`` judge a window's count against the
binomial tail of its size n every tick while events arrive (n changes, so the critical count
is searched again). Two measurements in one run:

- ``upper_critical`` / ``lower_critical`` for n = 1,000, 10,000 and 100,000 trials (each n
  searched afresh, as when the window's size moves every tick), per pair of calls;
- ``monitor.replay.replay`` (what ``support-monitor replay`` runs, default detectors and rules)
  of a burst of ``--burst`` sentiment scores within 10 s of event time, then one score a second
  for 60 s (about 60 ticks with the whole burst in the 1 h window), against a bare ``msgspec``
  decode of the same file.

    .venv/bin/python bench/voice_volume.py [--burst 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.detectors import binomial
from support_monitor.monitor import replay as replay_module
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.events import Event
from support_monitor.monitor.logs import configure

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()


def critical_pairs() -> list[tuple[int, float]]:
    """(n, ms per upper+lower pair) with p = 0.3 and alpha = 0.001, n moving by one per call."""
    rows = []
    for n in (1_000, 10_000, 100_000):
        binomial.upper_critical.cache_clear()
        binomial.lower_critical.cache_clear()
        start = time.process_time()
        for j in range(20):
            binomial.upper_critical(n + j, 0.3, 0.001)
            binomial.lower_critical(n + j, 0.3, 0.001)
        rows.append((n, (time.process_time() - start) / 20 * 1e3))
    return rows


def write_file(path: Path, burst: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(burst + 60):
            ts = T0 + (10.0 * i / burst if i < burst else 10.0 + (i - burst))
            score = -0.8 if i % 4 == 0 else 0.2  # a quarter negative
            line = {
                "event_id": f"s{i}",
                "type": "sentiment.scored",
                "ts": datetime.fromtimestamp(ts, UTC).isoformat(),
                "channel": "chat",
                "score": score,
            }
            out.write(json.dumps(line) + "\n")


def bare_decode(path: Path) -> float:
    decoder = msgspec.json.Decoder(Event)
    start = time.process_time()
    with path.open("rb") as f:
        for line in f:
            decoder.decode(line).ts.timestamp()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=100_000)
    args = parser.parse_args()
    print("| n (trials) | upper + lower critical count, ms (CPU) |")
    print("|---:|---:|")
    for n, ms in critical_pairs():
        print(f"| {n:,} | {ms:.2f} |")
    path = Path(f"bench/out/voice-volume-{args.burst}.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_file(path, args.burst)
    configure("error", "json")
    settings = parse_settings({})
    bare = bare_decode(path)
    start = time.process_time()
    asyncio.run(replay_module.replay(path, settings))
    full = time.process_time() - start
    events = args.burst + 60
    print(
        f"\nreplay of {events:,} sentiment scores (burst of {args.burst:,} in 10 s, then 1/s for "
        f"60 s): {full:.2f} s CPU; bare decode {bare:.3f} s; ratio {bare / full:.3f}"
    )


if __name__ == "__main__":
    main()
