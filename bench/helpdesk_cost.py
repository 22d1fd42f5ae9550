"""Help-desk clocks: replay throughput and memory per open ticket with calendars, priorities and
pauses on, against the same events with them off, in one run.

The events (one file, both configs): tickets on one email channel, one new ticket per second of
event time (a realistic help desk is far sparser), each with a priority, and over its life a
status change to ``pending`` and back to ``open`` (a customer reply in between), two responses,
one priority change for a tenth of them, and a solve. "Off" is the channel with 24/7 clocks, the
same three targets for every priority and no status pausing anything (``pause`` lists empty);
"on" adds a split-shift Europe/Berlin calendar with holidays, per-priority targets and the default
pause (``pending`` pauses resolution). The throughput is ``monitor.replay.replay`` (the CLI's road,
tick road included) against a bare ``msgspec`` decode of the same file measured in the same run.
Memory is the RSS growth per open ticket of an engine holding N tickets that are each paused with a
running next-reply clock, in fresh processes.

    .venv/bin/python bench/helpdesk_cost.py [--tickets 50000] [--open 100000] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor import replay as replay_module
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.events import Event
from support_monitor.monitor.logs import configure

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()  # a Monday
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
EMAIL_OFF: dict[str, Any] = {
    "first_response_seconds": 3600,
    "next_reply_seconds": 4 * 3600,
    "resolution_seconds": 86400,
    "pause": {"resolution": []},
}
EMAIL_ON: dict[str, Any] = {
    **EMAIL_OFF,
    "pause": {"resolution": ["pending"]},
    "priorities": {
        "urgent": {"first_response": "15m", "next_reply": "1h", "resolution": "4h"},
        "high": {"first_response": "30m", "next_reply": "2h", "resolution": "12h"},
    },
    "calendar": "office",
}
CALENDARS = {
    "office": {
        "timezone": "Europe/Berlin",
        "hours": {d: ["08:00-12:30", "13:30-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-03-04", "2026-04-03", "2026-04-06", "2026-05-01"],
    }
}


def config(*, on: bool) -> dict[str, Any]:
    cfg: dict[str, Any] = {"channels": {"email": EMAIL_ON if on else EMAIL_OFF}}
    if on:
        cfg["calendars"] = CALENDARS
    return cfg


def generate(path: Path, tickets: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    events: list[tuple[float, str, dict[str, Any]]] = []
    for i in range(tickets):
        life: list[tuple[float, str, dict[str, Any]]] = []
        t = START + i  # one new ticket per second
        life.append((t, "ticket.created", {"priority": rng.choice(PRIORITIES)}))
        t += rng.uniform(60, 7200)
        life.append((t, "ticket.responded", {}))
        t += rng.uniform(10, 600)
        life.append((t, "ticket.status_changed", {"status": "pending"}))
        t += rng.uniform(600, 4 * 86400)
        life.append((t, "ticket.customer_replied", {}))
        life.append((t, "ticket.status_changed", {"status": "open"}))
        if rng.random() < 0.1:
            life.append((t + 1, "ticket.priority_changed", {"priority": "urgent"}))
        t += rng.uniform(60, 8 * 3600)
        life.append((t, "ticket.responded", {}))
        life.append((t + rng.uniform(60, 3600), "ticket.solved", {}))
        events += [(ts, kind, {"ticket_id": f"t{i}", **fields}) for ts, kind, fields in life]
    events.sort(key=lambda e: e[0])
    with path.open("w") as f:
        for n, (ts, kind, fields) in enumerate(events):
            stamp = datetime.fromtimestamp(ts, UTC).isoformat()
            line = {"event_id": f"e{n}", "type": kind, "ts": stamp, "channel": "email", **fields}
            f.write(json.dumps(line) + "\n")
    return len(events)


def bare_decode(path: Path) -> float:
    decoder = msgspec.json.Decoder(Event)
    start = time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            decoder.decode(line).ts.timestamp()
    return time.perf_counter() - start


def replay_seconds(path: Path, *, on: bool) -> tuple[float, bytes]:
    settings = parse_settings(config(on=on))
    configure("warning", "json")
    start = time.perf_counter()
    text = asyncio.run(replay_module.replay(path, settings))
    return time.perf_counter() - start, text


_CHILD = r"""
import gc, json, sys
sys.path.insert(0, {root!r})
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode
from bench.helpdesk_cost import config

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
n = {n}
engine = Engine(parse_settings(config(on={on})))
t0 = 1772442000.0 + 9 * 3600  # a Monday 10:00 in Berlin: business hours
engine.advance(t0)
template = ('{{"event_id":"e","type":"ticket.%s","ts":"2026-03-02T09:00:00+00:00",'
            '"channel":"email","ticket_id":"%s"%s}}')
gc.collect()
before = rss()
for i in range(n):
    tid = "ticket-%08d" % i
    for kind, extra in (("created", ',"priority":"high"'), ("customer_replied", ""),
                        ("status_changed", ',"status":"pending"')):
        assert engine.apply(decode((template % (kind, tid, extra)).encode(), 65536), t0) is None
engine.rebuild_timers()
gc.collect()
print(rss() - before, len(engine.tickets), engine.timer_entries)
"""


def open_ticket_bytes(n: int, *, on: bool) -> tuple[int, int, int]:
    code = _CHILD.format(root=str(ROOT), n=n, on=on)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown, kept, timers = (int(x) for x in out.stdout.split())
    return grown, kept, timers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--open", type=int, default=100_000)
    args = parser.parse_args()
    path = ROOT / "bench" / "out" / f"helpdesk-{args.tickets}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    count = generate(path, args.tickets)
    t_bare = bare_decode(path)
    rows = []
    for on in (False, True):
        seconds, _ = replay_seconds(path, on=on)
        rows.append((on, seconds))
    print(f"{count:,} events ({args.tickets:,} tickets, one created per second of event time)\n")
    print("| road | seconds | events/s | ratio to bare decode |")
    print("|---|---:|---:|---:|")
    print(f"| bare decode (msgspec, same file) | {t_bare:.2f} | {count / t_bare:,.0f} | 1 |")
    for on, seconds in rows:
        label = "replay, calendar + priorities + pauses" if on else "replay, 24/7, no pauses"
        print(f"| {label} | {seconds:.2f} | {count / seconds:,.0f} | {t_bare / seconds:.3f} |")
    print(
        "\n| open tickets (each paused, next reply running) | kept | timer entries | bytes each |"
    )
    print("|---|---:|---:|---:|")
    for on in (False, True):
        grown, kept, timers = open_ticket_bytes(args.open, on=on)
        label = "calendar + priorities + pauses" if on else "24/7, no pauses"
        print(f"| {label} | {kept:,} | {timers:,} | {grown / args.open:,.0f} |")


if __name__ == "__main__":
    main()
