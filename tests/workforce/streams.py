"""Random streams for the workforce tests: agent states and contacts (queued, answered by an
agent or not, ended or abandoned), delivered out of order within the allowed lateness; each
contact's own events arrive in order. Times are whole milliseconds after ``T0``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.support import T0, iso

CFG: dict[str, Any] = {
    "windows": ["1m", "5m", "today"],
    "timezone": "UTC",
    "day_starts_at": "09:05",  # T0 is 09:00: the day starts 300 s into the streams
    "ingest": {"allowed_lateness": 5},
    "channels": {
        "voice": {"answer_seconds": 20, "service_level_target": 0.8, "queues": ["billing", "tech"]},
        "chat": {"answer_seconds": 60, "service_level_target": 0.9, "queues": ["sales"]},
        "email": {"first_response_seconds": 3600, "queues": ["default"]},
    },
}
WINDOWS = {"1m": 60, "5m": 300, "today": 25 * 3600}
"""Spans in seconds; ``today`` sorts last (as the engine's 25 h bound) in the handle time's
fallback from the shortest window to the longer ones."""
DAY_START_MS = 300_000
LIVE = {"voice": ("billing", "tech"), "chat": ("sales",)}
QUEUES = {**LIVE, "email": ("default",)}
AGENTS = ("a1", "a2", "a3")
STATES = ("available", "busy", "after_call_work", "break", "offline")
GAPS_MS = (0, 0, 1, 250, 999, 1000, 1500, 4000, 20_000, 70_000, 299_999, 400_000)
DELAYS_MS = (0, 0, 0, 0, 1, 999, 1000, 4999)  # below the allowed lateness (5 s)
LATER_S = (0.0, 0.001, 0.999, 1.0, 30.0, 61.0, 299.5, 400.0)


@dataclass
class Sent:
    """One event of a stream: its time (ms after T0), when it arrives, and its JSON fields."""

    ms: int
    arrival: int
    seq: int
    fields: dict[str, Any]


@dataclass
class Case:
    events: list[Sent]
    later: list[float]


@st.composite
def streams(draw: st.DrawFn) -> Case:
    """Agent states and contacts (queued, answered by an agent or not, ended or abandoned)."""
    events: list[Sent] = []
    t = 0
    open_contacts: list[tuple[str, str, int]] = []  # (contact, answered by, arrival of last)
    waiting: list[tuple[str, int]] = []  # (contact, arrival of its queued)
    n = draw(st.integers(1, 80))

    def add(ms: int, fields: dict[str, Any], after: int = 0) -> int:
        arrival = max(ms + draw(st.sampled_from(DELAYS_MS)), after)
        events.append(Sent(ms, arrival, len(events), fields))
        return arrival

    for i in range(n):
        t += draw(st.sampled_from(GAPS_MS))
        action = draw(
            st.sampled_from(("state", "state", "state", "queue", "answer", "end", "abandon"))
        )
        channel = draw(st.sampled_from(tuple(LIVE)))
        if action == "state":
            channel = draw(st.sampled_from((*LIVE, "email")))  # a ticket channel has agents too
            fields: dict[str, Any] = {
                "type": "agent.state",
                "channel": channel,
                "agent_id": draw(st.sampled_from(AGENTS)),
                "state": draw(st.sampled_from(STATES)),
            }
            if draw(st.booleans()):
                fields["queues"] = list(QUEUES[channel][: draw(st.integers(1, 2))])
            add(t, fields)
        elif action == "queue":
            contact = f"c{i}"
            fields = {
                "type": "contact.queued",
                "channel": channel,
                "queue": draw(st.sampled_from(LIVE[channel])),
                "contact_id": contact,
            }
            waiting.append((contact, add(t, fields)))
        elif action == "answer" and waiting:
            contact, after = waiting.pop(draw(st.integers(0, len(waiting) - 1)))
            agent = draw(st.sampled_from((*AGENTS, None)))
            # the answer's own channel is not used: the contact's (queued) channel is
            fields = {
                "type": "contact.answered",
                "channel": draw(st.sampled_from(tuple(LIVE))),
                "contact_id": contact,
            }
            if agent is not None:
                fields["agent_id"] = agent
            open_contacts.append((contact, agent or "", add(t, fields, after)))
        elif action == "end" and open_contacts:
            contact, _, after = open_contacts.pop(draw(st.integers(0, len(open_contacts) - 1)))
            fields = {"type": "contact.ended", "channel": channel, "contact_id": contact}
            add(t, fields, after)
        elif action == "abandon" and waiting:
            contact, after = waiting.pop(draw(st.integers(0, len(waiting) - 1)))
            fields = {"type": "contact.abandoned", "channel": channel, "contact_id": contact}
            add(t, fields, after)
    events.sort(key=lambda e: (e.arrival, e.seq))
    later = sorted(set(draw(st.lists(st.sampled_from(LATER_S), max_size=3))))
    return Case(events, later)


START = Sent(
    0, 0, -1, {"type": "contact.queued", "channel": "chat", "queue": "sales", "contact_id": "clock"}
)
"""The first line of every stream (id ``clock``): it starts the clock, and its second, at T0."""


def event_lines(case: Case) -> list[bytes]:
    """The stream's JSON lines in arrival order, :data:`START` first."""
    out = [json.dumps({"event_id": "clock", "ts": iso(T0), **START.fields})]
    for sent in case.events:
        event = {"event_id": f"e{sent.seq}", "ts": iso(T0 + sent.ms / 1000), **sent.fields}
        out.append(json.dumps(event))
    return [line.encode() for line in out]


def last_ms(case: Case) -> int:
    """The stream's last event time (ms after T0): the replay's clock at its end."""
    return max((s.ms for s in case.events), default=0)
