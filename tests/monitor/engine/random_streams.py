"""Random event streams (hypothesis) for the engine-against-reference tests, and their config."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from tests.support import T0, iso

CFG: dict[str, Any] = {
    "windows": ["1m", "5m", "1h"],
    "ingest": {"allowed_lateness": 5},
    "channels": {
        "voice": {"answer_seconds": 20, "short_abandon_seconds": 5, "queues": ["billing", "tech"]},
        "chat": {"answer_seconds": 45, "short_abandon_seconds": 3, "queues": ["sales"]},
        "email": {"first_response_seconds": 120, "resolution_seconds": 400, "queues": ["default"]},
    },
}


WINDOWS = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}


ACTIONS = (
    "queue",
    "queue",
    "queue",
    "answer",
    "answer",
    "abandon",
    "end",
    "end",
    "ghost",
    "create",
    "create",
    "respond",
    "solve",
    "reopen",
    "rate",
    "complaint",
    "duplicate",
    "bad_queue",
    "group_contact",
    "group_ticket",
)


FRACTIONS = (0.0, 0.0, 0.0, 0.001, 0.25, 0.999)


CONTACT_GROUPS = (("answered",), ("abandoned",), ("answered", "ended"), ("ended",))


TICKET_GROUPS = (("responded",), ("solved",), ("responded", "solved"), ("solved", "reopened"))


def reverse_groups(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events with each group (ids ``g<n>.0``, ``g<n>.1``, ... in a row) reversed:
    outcomes first. A redelivered copy of a group event later in the stream stays in place."""
    out: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    seen: set[str] = set()
    for e in [*events, {"event_id": ""}]:
        event_id = e["event_id"]
        member = bool(group) and event_id == f"{group[0]['event_id'][:-2]}.{len(group)}"
        if group and not member:
            out.extend(reversed(group))
            group = []
        if member or (
            event_id.startswith("g") and event_id.endswith(".0") and event_id not in seen
        ):
            group.append(e)
        elif event_id:
            out.append(e)
        seen.add(event_id)
    return out


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], float]:
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 25),
                st.sampled_from(FRACTIONS),
                st.sampled_from(ACTIONS),
                st.integers(0, 10_000),
            ),
            max_size=120,
        )
    )
    events: list[dict[str, Any]] = []
    contacts: list[tuple[str, str]] = []
    tickets: list[str] = []
    now = 0.0
    for n, (dt, frac, action, pick) in enumerate(steps):
        now = math.floor(now) + dt + frac if dt else now
        base = {"event_id": f"e{n}", "ts": iso(T0 + now)}
        live = (
            ("voice", "billing")
            if pick % 3 == 0
            else ("voice", "tech")
            if pick % 3 == 1
            else ("chat", "sales")
        )
        if action == "queue":
            cid = f"c{n}"
            contacts.append((cid, live[0]))
            events.append(
                {
                    **base,
                    "type": "contact.queued",
                    "channel": live[0],
                    "queue": live[1],
                    "contact_id": cid,
                }
            )
        elif action in ("answer", "abandon", "end") and contacts:
            cid, ch = contacts[pick % len(contacts)]
            kind = {"answer": "answered", "abandon": "abandoned", "end": "ended"}[action]
            events.append({**base, "type": f"contact.{kind}", "channel": ch, "contact_id": cid})
        elif action == "ghost":
            events.append(
                {
                    **base,
                    "type": "contact.answered",
                    "channel": "voice",
                    "contact_id": f"ghost{pick}",
                }
            )
        elif action == "create":
            tid = f"t{n}"
            tickets.append(tid)
            tags = ["complaint"] if pick % 5 == 0 else []
            events.append(
                {
                    **base,
                    "type": "ticket.created",
                    "channel": "email",
                    "ticket_id": tid,
                    "tags": tags,
                }
            )
        elif action in ("respond", "solve", "reopen") and tickets:
            kind = {"respond": "responded", "solve": "solved", "reopen": "reopened"}[action]
            events.append(
                {
                    **base,
                    "type": f"ticket.{kind}",
                    "channel": "email",
                    "ticket_id": tickets[pick % len(tickets)],
                }
            )
        elif action == "rate":
            ticket = {"ticket_id": tickets[pick % len(tickets)]} if tickets and pick % 2 else {}
            events.append(
                {
                    **base,
                    "type": "ticket.rated",
                    "channel": live[0],
                    "rating": pick % 5 + 1,
                    **ticket,
                }
            )
        elif action == "complaint":
            events.append({**base, "type": "complaint.received", "channel": live[0]})
        elif action == "duplicate" and events:
            events.append({**events[pick % len(events)]})
        elif action == "group_contact":
            back = pick % 6  # the queued is up to the 5 s lateness before its last outcome
            kinds = CONTACT_GROUPS[pick // 6 % len(CONTACT_GROUPS)]
            cid = f"g{n}"
            contacts.append((cid, live[0]))
            at = [now - back, *(now - back / 2 * (len(kinds) - 1 - i) for i in range(len(kinds)))]
            group = [{"type": "contact.queued", "queue": live[1]}]
            group += [{"type": f"contact.{kind}"} for kind in kinds]
            for i, (ts, fields) in enumerate(zip(at, group, strict=True)):
                events.append(
                    {
                        "event_id": f"g{n}.{i}",
                        "ts": iso(T0 + ts),
                        "channel": live[0],
                        "contact_id": cid,
                        **fields,
                    }
                )
        elif action == "group_ticket":
            back = pick % 6
            kinds = TICKET_GROUPS[pick // 6 % len(TICKET_GROUPS)]
            tid = f"g{n}"
            tickets.append(tid)
            at = [now - back, *(now - back / 2 * (len(kinds) - 1 - i) for i in range(len(kinds)))]
            types = ["ticket.created", *(f"ticket.{kind}" for kind in kinds)]
            for i, (ts, kind) in enumerate(zip(at, types, strict=True)):
                events.append(
                    {
                        "event_id": f"g{n}.{i}",
                        "ts": iso(T0 + ts),
                        "type": kind,
                        "channel": "email",
                        "ticket_id": tid,
                    }
                )
        elif action == "bad_queue":
            events.append(
                {
                    **base,
                    "type": "contact.queued",
                    "channel": "voice",
                    "queue": f"rnd{pick}",
                    "contact_id": f"b{n}",
                }
            )
    tail = draw(st.integers(0, 700))
    tail_frac = draw(st.sampled_from(FRACTIONS))
    return events, float(math.ceil(now) + tail + tail_frac)
