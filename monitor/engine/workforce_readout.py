"""Read side of the workforce: the four workforce families as ``Series`` rows.

A channel has workforce rows once an agent was seen in it (an ``agent.state`` event, or a
``contact.answered`` naming an agent); a site that never sends agent events has none. The
staffing families (``support_agents_required``, ``support_estimated_wait_seconds``) exist only for
channels with ``answer_seconds``, one row per queue of the channel. Definitions:
``docs/workforce.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from support_monitor.monitor.catalogue import help_texts
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.engine.state import ChannelRuntime
from support_monitor.monitor.engine.windows import Agg
from support_monitor.monitor.engine.workforce import AGENT_STATES

WORKFORCE_HELP: dict[str, str] = help_texts("workforce")


def occupancy(agg: Agg, unaccrued: tuple[int, int, int] = (0, 0, 0)) -> float:
    """(busy + acw) / (available + busy + acw) agent time of the window's buckets plus the
    ``unaccrued`` part-second (available, busy, acw ms); NaN when the denominator is 0."""
    available, busy, acw = unaccrued
    worked = agg.agent_busy_ms + agg.agent_acw_ms + busy + acw
    total = worked + agg.agent_available_ms + available
    return worked / total if total > 0 else math.nan


def workforce_series(engine: Engine, channel: ChannelRuntime) -> Iterator[Series]:
    """The workforce rows of one channel (none before an agent was seen in it)."""
    workforce = engine.workforce
    name = channel.name
    if not workforce.seen(name):
        return
    counts = workforce.counts(name)
    for state in AGENT_STATES:
        yield Series("support_agents", (("channel", name), ("state", state)), counts[state])
    windows = channel.windows
    unaccrued = workforce.unaccrued_ms(name, engine.now)
    for window, agg in zip(windows.names, windows.totals, strict=True):
        yield Series(
            "support_occupancy_ratio",
            (("channel", name), ("window", window)),
            occupancy(agg, unaccrued),
        )
    if channel.settings.answer_seconds is None:
        return
    for queue in channel.queues:
        staffing = workforce.staffing(name, queue, engine.now)
        if staffing is None:
            continue
        lbl = (("channel", name), ("queue", queue))
        yield Series("support_agents_required", lbl, staffing.required)
        yield Series("support_estimated_wait_seconds", lbl, staffing.wait_seconds)


def all_workforce_series(engine: Engine) -> Iterator[Series]:
    """The workforce rows of every channel."""
    for channel in engine.channels.values():
        yield from workforce_series(engine, channel)


MAX_AGENT_ROWS = 1000
"""Rows of ``/api/v1/agents`` at most (``limit`` query parameter, default 100)."""


def agents_view(
    engine: Engine, now: float, channel: str | None, limit: str | None
) -> dict[str, Any]:
    """The per-agent drill-down of the console API: ``{"agents": [...], "total", "truncated"}``,
    at most ``limit`` (1..1000, default 100) agents sorted by channel then agent id, each
    ``{"channel", "agentId", "state", "secondsInState", "contactsHandled"}``. Raises
    ``ValueError`` (a message naming the parameter) for an unknown channel or a bad limit."""
    if channel is not None and channel not in engine.channels:
        msg = "channel: not a configured channel"
        raise ValueError(msg)
    if limit is None:
        count = 100
    elif (
        len(limit) <= 4
        and limit.isascii()
        and limit.isdecimal()
        and 1 <= int(limit) <= MAX_AGENT_ROWS
    ):
        count = int(limit)
    else:
        msg = f"limit: a whole number from 1 to {MAX_AGENT_ROWS}"
        raise ValueError(msg)
    workforce = engine.workforce
    total = len(workforce.agents) if channel is None else sum(workforce.counts(channel).values())
    rows = workforce.agent_rows(now, count, channel)
    return {
        "agents": [
            {
                "channel": row["channel"],
                "agentId": row["agent_id"],
                "state": row["state"],
                "secondsInState": row["seconds_in_state"],
                "contactsHandled": row["contacts_handled"],
            }
            for row in rows
        ],
        "total": total,
        "truncated": total > len(rows),
    }
