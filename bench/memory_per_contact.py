"""Memory per open contact: RSS growth with N contacts waiting (default 1,000,000).

Measured twice in fresh processes: engine state alone (events applied without de-duplication),
and the full pipeline (the de-duplication window then also remembers N event ids).

    python bench/memory_per_contact.py [--contacts 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import gc, sys
sys.path.insert(0, {root!r})
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
n, mode = {n}, {mode!r}
engine = Engine(parse_settings(CONFIG))
pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)
t0 = 1772442000.0
template = ('{{"event_id":"e%07d","type":"contact.queued","ts":"2026-03-02T09:00:00.000+00:00",'
            '"channel":"voice","queue":"billing","contact_id":"c%07d"}}')
gc.collect()
before = rss()
for i in range(n):
    raw = (template % (i, i)).encode()
    if mode == "engine":
        event = decode(raw, 65536)
        engine.apply(event, t0)
    else:
        pipeline.process("bench", Delivery(raw, "x"))
gc.collect()
after = rss()
waiting = sum(len(q.waiting) for ch in engine.channels.values() for q in ch.queues.values())
print(after - before, waiting, len(engine.dedup))
"""


def measure(n: int, mode: str) -> tuple[int, int, int]:
    code = _CHILD.format(root=str(ROOT), n=n, mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown, waiting, ids = (int(x) for x in out.stdout.split())
    return grown, waiting, ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    gc.collect()
    rows = []
    for mode, label in (("engine", "engine state only"), ("pipeline", "pipeline (+ dedup ids)")):
        grown, waiting, ids = measure(args.contacts, mode)
        rows.append((label, waiting, ids, grown, grown / waiting))
    print("| measured | contacts waiting | ids remembered | RSS growth | bytes per contact |")
    print("|---|---:|---:|---:|---:|")
    for label, waiting, ids, grown, per in rows:
        print(f"| {label} | {waiting:,} | {ids:,} | {grown / 2**20:,.0f} MiB | {per:,.0f} |")
    print(json.dumps({"contacts": args.contacts}))


if __name__ == "__main__":
    main()
