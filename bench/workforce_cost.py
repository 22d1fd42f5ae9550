"""Workforce cost: per ``agent.state`` event and per clock tick, with 2,000 agents.

The engine gets ``--agents`` agents (split over two live channels of two queues each, windows
``5m`` and ``1h``), then ``--seconds`` seconds of event time in which ``--rate`` random agents a
second change to a random state at a random millisecond. ``--late`` of the events are delivered
1-4 s late: most are still the agent's newest change (the time already accrued is moved), the
rest are superseded by a newer change of the same agent (counted, printed). Events are decoded
before timing.

Timed, each in the same run:

- *bare loop*: per event, ``ev.ts.timestamp()`` and one dict store of the agent's state (what
  any consumer of the event does at least), on each second's batch right before it is applied;
- *apply*: ``Engine.apply`` of each event (the engine's dispatch and the workforce update), the
  events of one second of event time timed as a batch;
- *tick*: ``Workforce.accrue`` at each new second (what the engine's ``advance`` calls for the
  workforce; it also drains the changes stamped in that second), then the rest of
  ``Engine.advance`` (windows, deadlines) for comparison;
- *read*: the workforce rows of every channel (what a scrape adds), after each second.

    .venv/bin/python bench/workforce_cost.py [--agents 2000] [--seconds 600] [--rate 200]
        [--late 0.1] [--seed 11]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.workforce import AGENT_STATES
from support_monitor.monitor.engine.workforce_readout import all_workforce_series
from support_monitor.monitor.events import AgentState, decode

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
CONFIG = {
    "windows": ["5m", "1h"],
    "channels": {
        "voice": {"answer_seconds": 20, "service_level_target": 0.8, "queues": ["a", "b"]},
        "chat": {"answer_seconds": 60, "service_level_target": 0.8, "queues": ["c", "d"]},
    },
}


def event(n: int, ts: float, channel: str, agent: str, state: str) -> AgentState:
    raw = {
        "event_id": f"e{n}",
        "type": "agent.state",
        "ts": datetime.fromtimestamp(ts, UTC).isoformat(),
        "channel": channel,
        "agent_id": agent,
        "state": state,
    }
    ev = decode(json.dumps(raw).encode(), 65536)
    assert isinstance(ev, AgentState)
    return ev


def workload(
    agents: int, seconds: int, rate: int, late: float, seed: int
) -> tuple[list[AgentState], list[list[AgentState]]]:
    """The agents' first states, then per second of event time the events delivered in it."""
    rng = random.Random(seed)
    names = [("voice" if i % 2 else "chat", f"agent-{i:05d}") for i in range(agents)]
    n = 0
    first = []
    for channel, agent in names:
        n += 1
        first.append(event(n, T0 + 0.5, channel, agent, "available"))
    last = dict.fromkeys(names, T0 + 0.5)
    seconds_out: list[list[AgentState]] = [[] for _ in range(seconds + 8)]
    for s in range(1, seconds + 1):
        for _ in range(rate):
            channel, agent = names[rng.randrange(agents)]
            ts = max(T0 + s + rng.randrange(1000) / 1000, last[channel, agent] + 0.001)
            last[channel, agent] = ts
            n += 1
            delay = rng.randrange(1, 5) if rng.random() < late else 0
            ev = event(n, ts, channel, agent, rng.choice(AGENT_STATES))
            seconds_out[int(ts - T0) + delay].append(ev)
    return first, seconds_out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--late", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    first, per_second = workload(args.agents, args.seconds, args.rate, args.late, args.seed)
    events = [ev for batch in per_second for ev in batch]

    last: dict[tuple[str, str], str] = {}
    bare_s = 0.0
    engine = Engine(parse_settings(CONFIG))
    workforce = engine.workforce
    engine.advance(T0 + 0.5)
    for ev in first:
        engine.apply(ev, ev.ts.timestamp())
    apply_s = 0.0
    accrue: list[float] = []
    advance: list[float] = []
    read: list[float] = []
    for s, batch in enumerate(per_second, start=1):
        edge = T0 + s - 1
        accrue_edge = workforce.accrue
        t0 = time.perf_counter()
        accrue_edge(edge)  # what advance would call; it then finds the edge already accrued
        accrue.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.advance(edge + 0.001)
        advance.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for ev in batch:  # the bare loop, on the same batch right before (same machine load)
            ev.ts.timestamp()
            last[ev.channel, ev.agent_id] = ev.state
        bare_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for ev in batch:
            engine.apply(ev, ev.ts.timestamp())
        apply_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = list(all_workforce_series(engine))
        read.append(time.perf_counter() - t0)
    per_event = apply_s / len(events)
    bare = bare_s / len(events)
    print(f"agents: {len(workforce.agents):,}, events: {len(events):,}, seconds: {len(accrue):,}")
    print("| what | cost | in bare-loop events |")
    print("|---|---:|---:|")
    print(f"| bare loop, per event | {bare * 1e9:,.0f} ns | 1.0 |")
    print(
        f"| `Engine.apply(agent.state)`, per event | {per_event * 1e9:,.0f} ns | "
        f"{per_event / bare:.1f} |"
    )
    for name, values in (
        ("`Workforce.accrue`, per tick", accrue),
        ("rest of `Engine.advance`, per tick", advance),
        ("workforce rows of all channels, per read", read),
    ):
        mean = statistics.fmean(values)
        p99 = sorted(values)[int(0.99 * (len(values) - 1))]
        print(
            f"| {name} | mean {mean * 1e6:,.1f} µs, p99 {p99 * 1e6:,.1f} µs | {mean / bare:,.0f} |"
        )
    print(f"rows per read: {len(rows)}; superseded: {workforce.superseded}")


if __name__ == "__main__":
    main()
