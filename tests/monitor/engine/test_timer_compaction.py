"""Compacting the timer heap (dropping the entries that can never take effect) changes nothing:
an engine that compacts after every event gives the same rows, tick by tick, as one that never
does, on a random mix of live contacts and tickets with business hours, priorities, pauses,
next replies and reopens."""

from __future__ import annotations

import json
import math
import random
from typing import Any

from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.helpdesk.tickets import TICKET_MOVES, move_fields
from tests.support import CONFIG, T0, iso, settings

WEEKDAYS = {day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def _engine() -> tuple[Engine, Pipeline]:
    channels = json.loads(json.dumps(CONFIG["channels"]))
    channels["email"] = {
        "queues": ["default"],
        "first_response_seconds": 1800,
        "next_reply_seconds": 3600,
        "resolution_seconds": 4 * 3600,
        "priorities": {"urgent": {"first_response": "10m", "resolution": "1h"}},
        "calendar": "office",
    }
    calendar = {"timezone": "Europe/Berlin", "hours": WEEKDAYS, "holidays": []}
    engine = Engine(settings(channels=channels, calendars={"office": calendar}))
    return engine, Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)


def _events(rng: random.Random, count: int) -> list[bytes]:
    out: list[bytes] = []
    now = 0.0
    contacts: list[str] = []
    tickets: list[str] = []
    for n in range(count):
        now += rng.expovariate(1 / 8)
        roll = rng.random()
        # a third of the contacts queue 3-4.9 s late (allowed lateness 5 s): out of order,
        # each on its own answer timer
        late = rng.uniform(3.0, 4.9) if roll < 0.1 else 0.0
        event: dict[str, Any] = {"event_id": f"e{n}", "ts": iso(T0 + now - late)}
        if roll < 0.3:
            cid = f"c{n}" if rng.random() < 0.6 or not contacts else rng.choice(contacts)
            contacts.append(cid)
            kind = (
                "contact.queued"
                if cid == f"c{n}"
                else rng.choice(("contact.answered", "contact.abandoned", "contact.ended"))
            )
            queue = rng.choice(("billing", "tech"))
            event |= {"type": kind, "channel": "voice", "queue": queue, "contact_id": cid}
        elif roll < 0.45 or not tickets:
            tickets.append(f"t{n}")
            priority = rng.choice(("normal", "normal", "urgent", "low"))
            event |= {"type": "ticket.created", "ticket_id": f"t{n}", "priority": priority}
        else:
            kind = rng.choice(TICKET_MOVES)
            event |= {"type": kind, "ticket_id": rng.choice(tickets), **move_fields(rng, kind)}
        event.setdefault("channel", "email")
        out.append(json.dumps(event).encode())
    return out


def _rows(engine: Engine) -> list[tuple[str, Any, float | str]]:
    return [(r.name, r.labels, "nan" if math.isnan(r.value) else r.value) for r in series(engine)]


def test_compacting_after_every_event_gives_the_same_rows() -> None:
    lines = _events(random.Random(23), 4000)
    plain, plain_road = _engine()
    compacted, compacted_road = _engine()
    dropped = 0
    for i, line in enumerate(lines):
        plain_road.process("test", Delivery(line, f"line:{i + 1}"))
        compacted_road.process("test", Delivery(line, f"line:{i + 1}"))
        dropped += compacted.compact_timers()
        if i % 20 == 0:
            assert _rows(compacted) == _rows(plain), i
    end = json.loads(lines[-1])["ts"]
    for engine in (plain, compacted):
        engine.flush(None)
    assert _rows(compacted) == _rows(plain), end
    assert dropped > 1000  # answered contacts, solved tickets, moved deadlines: not vacuous
