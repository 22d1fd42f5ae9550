"""Memory per ticket: RSS growth of the engine state with N tickets (default 200,000), random ids.

Measured in fresh processes, events applied straight to the engine (no de-duplication window):
N open tickets (``created``), N solved tickets still remembered (``created`` then ``solved``, with
``limits.max_solved_tickets`` raised to N), and N held early outcomes (``solved`` for tickets
never created, with ``limits.max_early_outcomes`` raised to N). For solved tickets the timer
heap is compacted as the engine's once-a-second decision does (all events here share one ``ts``).

    python bench/memory_per_ticket.py [--tickets 200000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import gc, sys, uuid
sys.path.insert(0, {root!r})
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode
from tests.support import CONFIG

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
n, mode = {n}, {mode!r}
cfg = dict(CONFIG, limits={{"max_solved_tickets": n, "max_early_outcomes": n}})
engine = Engine(parse_settings(cfg))
t0 = 1772442000.0
engine.advance(t0)
template = ('{{"event_id":"e%d","type":"ticket.%s","ts":"2026-03-02T09:00:00.000+00:00",'
            '"channel":"email","ticket_id":"%s"}}')
ids = [str(uuid.UUID(int=(i * 2654435761) % 2**128, version=4)) for i in range(n)]
gc.collect()
before = rss()
for i, tid in enumerate(ids):
    kinds = {{"open": ("created",), "solved": ("created", "solved"), "early": ("solved",)}}[mode]
    for kind in kinds:
        event = decode((template % (i, kind, tid)).encode(), 65536)
        assert engine.apply(event, t0) is None
    if mode == "solved" and i % 4096 == 0:
        engine.rebuild_timers()  # what the once-a-second decision does past 2x the live timers
if mode == "solved":
    engine.rebuild_timers()
gc.collect()
after = rss()
print(after - before, len(engine.tickets), engine.early_outcomes_held, engine.timer_entries)
"""


def measure(n: int, mode: str) -> tuple[int, ...]:
    code = _CHILD.format(root=str(ROOT), n=n, mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return tuple(int(x) for x in out.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=200_000)
    args = parser.parse_args()
    print("| measured | tickets kept | outcomes held | timer entries | RSS growth | bytes each |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, label in (
        ("open", "open tickets"),
        ("solved", "solved tickets remembered"),
        ("early", "held early outcomes"),
    ):
        grown, kept, held, timers = measure(args.tickets, mode)
        print(
            f"| {label} | {kept:,} | {held:,} | {timers:,} | {grown / 2**20:,.0f} MiB "
            f"| {grown / args.tickets:,.0f} |"
        )
    print(json.dumps({"tickets": args.tickets}))


if __name__ == "__main__":
    main()
