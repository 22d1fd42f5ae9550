"""Independent models for the workforce tests: time per state from intervals, Erlang C from
log-space sums (no recursion shared with ``monitor.engine.erlang``)."""

from __future__ import annotations

import math

from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.workforce_readout import all_workforce_series

TIMED = ("available", "busy", "after_call_work")


def state_ms(
    changes: dict[str, list[tuple[int, str]]], lo_ms: int, hi_ms: int, end_ms: int
) -> dict[str, int]:
    """Agent-ms per timed state within (lo_ms, hi_ms], each agent's changes sorted by time
    (ms after T0), its last state lasting until ``end_ms``."""
    out = dict.fromkeys(TIMED, 0)
    for seq in changes.values():
        ordered = sorted(seq, key=lambda c: c[0])
        for i, (start, state) in enumerate(ordered):
            stop = ordered[i + 1][0] if i + 1 < len(ordered) else end_ms
            if state in out:
                out[state] += max(0, min(stop, hi_ms) - max(start, lo_ms))
    return out


def occupancy(ms: dict[str, int]) -> float:
    worked = ms["busy"] + ms["after_call_work"]
    total = worked + ms["available"]
    return worked / total if total else math.nan


def p_wait(agents: int, traffic: float) -> float:
    """Erlang C probability of waiting from the textbook sum, in log space."""
    if agents <= traffic:
        return 1.0
    logs = [k * math.log(traffic) - math.lgamma(k + 1) for k in range(agents)]
    last = (
        agents * math.log(traffic) - math.lgamma(agents + 1) + math.log(agents / (agents - traffic))
    )
    top = max([*logs, last])
    head = sum(math.exp(v - top) for v in logs)
    tail = math.exp(last - top)
    return tail / (head + tail)


def required(traffic: float, handle: float, target_s: float, level: float) -> int:
    n = math.floor(traffic) + 1
    while 1 - p_wait(n, traffic) * math.exp(-(n - traffic) * target_s / handle) < level:
        n += 1
    return n


def wait(agents: int, traffic: float, handle: float) -> float:
    if agents <= traffic:
        return math.inf
    return p_wait(agents, traffic) * handle / (agents - traffic)


def rows(engine: Engine) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(r.name, r.labels): r.value for r in all_workforce_series(engine)}


def get(engine: Engine, name: str, **labels: str) -> float:
    return rows(engine)[name, tuple(sorted(labels.items()))]
