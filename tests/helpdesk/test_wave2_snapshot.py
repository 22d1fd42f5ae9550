"""Snapshots carry the Wave 2 state: business-time clocks (paused, next reply), priorities, the
today window, customer-voice counters and agents; a restored engine continues exactly."""

from __future__ import annotations

import math
from typing import Any

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.pipeline import Pipeline
from tests.helpdesk.tickets import Tickets, at, office


def _rows(engine: Engine) -> list[tuple[str, Any, float | str]]:
    return [(r.name, r.labels, "nan" if math.isnan(r.value) else r.value) for r in series(engine)]


def test_a_restored_engine_continues_every_wave2_clock_and_counter() -> None:
    email = {
        "first_response_seconds": 3600,
        "next_reply_seconds": 7200,
        "resolution_seconds": 8 * 3600,
        "priorities": {"urgent": {"first_response": "30m", "resolution": "4h"}},
        "calendar": "office",
    }
    top = {
        "calendars": {"office": office()},
        "windows": ["5m", "1h", "today"],
        "timezone": "Europe/Berlin",
    }
    first, second = Tickets(email, **top), Tickets(email, **top)
    script: list[tuple[str, str, dict[str, Any]]] = [
        ("ticket.created", "2026-03-06 17:30", {"ticket_id": "t1", "priority": "urgent"}),
        ("ticket.created", "2026-03-06 17:40", {"ticket_id": "t2"}),
        ("ticket.responded", "2026-03-06 17:45", {"ticket_id": "t2"}),
        ("ticket.customer_replied", "2026-03-06 17:50", {"ticket_id": "t2"}),
        ("ticket.status_changed", "2026-03-06 17:55", {"ticket_id": "t1", "status": "pending"}),
        ("survey.answered", "2026-03-06 17:56", {"survey": "nps", "score": 4}),
        ("sentiment.scored", "2026-03-06 17:57", {"score": -0.8, "ticket_id": "t2"}),
        ("agent.state", "2026-03-06 17:58", {"agent_id": "a1", "state": "available"}),
    ]
    later: list[tuple[str, str, dict[str, Any]]] = [
        ("ticket.status_changed", "2026-03-09 09:10", {"ticket_id": "t1", "status": "open"}),
        ("ticket.responded", "2026-03-09 10:00", {"ticket_id": "t2"}),
        ("survey.answered", "2026-03-09 10:01", {"survey": "ces", "score": 6}),
    ]
    for kind, when, fields in script:
        first.send(kind, at(when), **fields)
    first.at(at("2026-03-06 18:00"))
    data = snapshot.encode(snapshot.capture(first.engine, {}))
    second.engine, _, _ = snapshot.from_bytes(data, first.engine.settings)
    second.pipeline = Pipeline(second.engine, second.stats, event_clock=True, log_burst=0)
    assert _rows(second.engine) == _rows(first.engine)
    second.n = first.n
    for t in (first, second):
        for kind, when, fields in later:
            t.send(kind, at(when), **fields)
        t.at(at("2026-03-09 12:00"))
    assert _rows(second.engine) == _rows(first.engine)
    # Hand-computed: t1 urgent, first response 30 min from Friday 17:30: 30 min of business
    # time by Friday 18:00 -> breached at 18:00 (its pending status pauses resolution only).
    assert first.get("support_sla_breaches_total", sla="first_response") == 1
    # t2's next reply from Friday 17:50 (2 h: 10 min on Friday, 1 h 50 on Monday -> 10:50),
    # answered Monday 10:00: met.
    assert first.get("support_sla_breaches_total", sla="next_reply") == 0
