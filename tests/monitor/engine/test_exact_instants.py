"""Deadlines and durations on the microsecond grid of event times, with targets that are not
whole seconds (600.3 s, T = 33.3 s).

As float epochs, 10:00:00.1 + 600.3 s is 600.3000001907349 s after the start: compared raw, an
outcome stamped exactly at the deadline (on time by the contract) was late, ``--until`` at the
deadline counted a breach, and a duration exactly equal to the target missed the target's
histogram bucket. Expected values below are from the definitions (metrics.md), by hand.
"""

from __future__ import annotations

import json
from typing import Any

from support_monitor.monitor.config import Settings
from tests.support import CONFIG, Stream, run, settings, value

E = {"channel": "email", "queue": "default"}
C = {"channel": "chat", "queue": "sales"}


def _config(**email: Any) -> Settings:
    channels = json.loads(json.dumps(CONFIG["channels"]))
    channels["email"].update(email)
    channels["chat"]["answer_seconds"] = 33.3
    return settings(channels=channels)


def test_outcomes_exactly_at_fractional_deadlines_are_on_time() -> None:
    cfg = _config(first_response_seconds=100.7, resolution_seconds=600.3)
    s = Stream()
    s.add("ticket.created", 0.1, "email", ticket_id="t1")
    s.add("ticket.responded", 100.8, "email", ticket_id="t1")  # 100.7 s: exactly the target
    s.add("ticket.solved", 600.4, "email", ticket_id="t1")  # 600.3 s: exactly the target
    engine, _ = run(s.lines, cfg, until=700)
    for sla in ("first_response", "resolution"):
        assert value(engine, "support_sla_breaches_total", **E, sla=sla) == 0
    # Both durations fall in the target's own bucket (le="100.7", le="600.3").
    fr = engine.channels["email"].queues["default"].fr_hist
    res = engine.channels["email"].queues["default"].res_hist
    assert fr.counts[fr.bounds.index(100.7)] == 1
    assert res.counts[res.bounds.index(600.3)] == 1


def test_until_exactly_at_a_fractional_deadline_breaches_nothing_yet() -> None:
    cfg = _config(first_response_seconds=100.7, resolution_seconds=600.3)
    s = Stream()
    s.add("ticket.created", 0.1, "email", ticket_id="t1")
    s.add("ticket.responded", 50, "email", ticket_id="t1")
    s.add("contact.queued", 0.1, "chat", queue="sales", contact_id="c1")
    engine, _ = run(s.lines, cfg, until=600.4)  # the resolution deadline itself
    assert value(engine, "support_sla_breaches_total", **E, sla="resolution") == 0
    assert value(engine, "support_tickets_at_risk", **E, sla="resolution") == 1
    engine, _ = run(s.lines[:1] + s.lines[2:], cfg, until=33.4)  # the contact's deadline
    assert value(engine, "support_sla_breaches_total", **C, sla="answer") == 0
    assert value(engine, "support_queue_breached_waiting", **C) == 0
    assert value(engine, "support_queue_oldest_wait_seconds", **C) == 33.3
    engine.flush(engine.now + 0.000001)
    assert value(engine, "support_sla_breaches_total", **C, sla="answer") == 1
