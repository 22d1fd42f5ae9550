"""A priority change keeps the time already run: deadline = change time + new target - run
(events.md). While the clock is paused (``pending`` pauses resolution by default) a new target
below the time run puts that deadline before the change, while the ticket is open: a breach,
counted whatever comes next (audit of 2026-12-05: it waited for a resume, and a solve while
pending lost it).

Email: resolution 20 min (normal), 5 min (urgent); no calendar. Times 2026-03-11, Berlin.
"""

from __future__ import annotations

from tests.helpdesk.tickets import Tickets, at

EMAIL = {
    "first_response_seconds": 600,
    "resolution_seconds": 1200,
    "priorities": {"urgent": {"first_response": 60, "resolution": 300}},
}
RES = {"sla": "resolution"}


def _pending_then_urgent() -> Tickets:
    # resolution runs 10:00-10:10 (600 s), pending from 10:10, urgent (300 s) at 10:11:
    # deadline 10:11 + 300 s - 600 s = 10:06, before the change
    t = Tickets(EMAIL)
    t.send("ticket.created", at("2026-03-11 10:00"), ticket_id="p")
    t.send("ticket.responded", at("2026-03-11 10:01"), ticket_id="p")
    t.send("ticket.status_changed", at("2026-03-11 10:10"), ticket_id="p", status="pending")
    t.send("ticket.priority_changed", at("2026-03-11 10:11"), ticket_id="p", priority="urgent")
    return t


def test_still_pending_it_is_breached_and_still_paused() -> None:
    t = _pending_then_urgent().at(at("2026-03-11 12:00"))
    assert t.get("support_sla_breaches_total", **RES) == 1
    assert t.get("support_tickets_paused") == 1


def test_solved_while_pending_it_stays_breached() -> None:
    t = _pending_then_urgent()
    t.send("ticket.solved", at("2026-03-11 10:12"), ticket_id="p")
    assert t.at(at("2026-03-11 12:00")).get("support_sla_breaches_total", **RES) == 1


def test_resumed_it_is_counted_once() -> None:
    t = _pending_then_urgent()
    t.send("ticket.status_changed", at("2026-03-11 10:20"), ticket_id="p", status="open")
    t.send("ticket.solved", at("2026-03-11 10:30"), ticket_id="p")
    assert t.at(at("2026-03-11 12:00")).get("support_sla_breaches_total", **RES) == 1


def test_a_target_still_above_the_time_run_waits_for_the_resume() -> None:
    # pending at 10:03 after 180 s run; urgent's 300 s leaves 120 s, which run only after the
    # resume at 10:30: deadline 10:32
    t = Tickets(EMAIL)
    t.send("ticket.created", at("2026-03-11 10:00"), ticket_id="p")
    t.send("ticket.responded", at("2026-03-11 10:01"), ticket_id="p")
    t.send("ticket.status_changed", at("2026-03-11 10:03"), ticket_id="p", status="pending")
    t.send("ticket.priority_changed", at("2026-03-11 10:05"), ticket_id="p", priority="urgent")
    assert t.at(at("2026-03-11 10:29")).get("support_sla_breaches_total", **RES) == 0
    t.send("ticket.status_changed", at("2026-03-11 10:30"), ticket_id="p", status="open")
    assert t.at(at("2026-03-11 10:32")).get("support_sla_breaches_total", **RES) == 0
    assert t.at(at("2026-03-11 10:32:01")).get("support_sla_breaches_total", **RES) == 1
