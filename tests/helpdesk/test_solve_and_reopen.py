"""A solve ends the resolution clock only: the first-response and next-reply clocks end with a
response (events.md), so a ticket solved unanswered and reopened before its deadline breaches
there if still unanswered, as the metric contract counts a breach "at its deadline, ... if by
then it was still unanswered ... while the item is still open". A deadline that passes while
the ticket is solved counts nothing, then or later.

Email: first response 1 h, next reply 4 h, at-risk lead 10% of each target (6 min, 24 min).
Times are 2026-03-09 local (Europe/Berlin), no calendar.
"""

from __future__ import annotations

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.pipeline import Pipeline
from tests.helpdesk.tickets import Tickets, at

EMAIL = {"first_response_seconds": 3600, "next_reply_seconds": 4 * 3600}
FR = {"sla": "first_response"}
NR = {"sla": "next_reply"}


def _ticket_solved_unanswered() -> Tickets:
    t = Tickets(EMAIL)
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.solved", at("2026-03-09 09:01:40"), ticket_id="t1")
    return t


def test_reopened_unanswered_before_the_deadline_is_at_risk_then_breaches() -> None:
    # deadline 10:00, at risk from 09:54; reopened at 09:03:20 and never answered
    t = _ticket_solved_unanswered()
    t.send("ticket.reopened", at("2026-03-09 09:03:20"), ticket_id="t1")
    assert t.at(at("2026-03-09 09:53:59")).get("support_tickets_at_risk", **FR) == 0
    assert t.at(at("2026-03-09 09:55")).get("support_tickets_at_risk", **FR) == 1
    assert t.at(at("2026-03-09 10:00")).get("support_sla_breaches_total", **FR) == 0
    assert t.at(at("2026-03-09 10:00:01")).get("support_sla_breaches_total", **FR) == 1
    assert t.get("support_tickets_at_risk", **FR) == 0


def test_reopened_inside_the_lead_time_is_at_risk_at_once() -> None:
    t = _ticket_solved_unanswered()
    t.send("ticket.reopened", at("2026-03-09 09:57"), ticket_id="t1")
    assert t.at(at("2026-03-09 09:57")).get("support_tickets_at_risk", **FR) == 1
    t.send("ticket.responded", at("2026-03-09 09:59"), ticket_id="t1")  # in time
    assert t.at(at("2026-03-09 11:00")).get("support_sla_breaches_total", **FR) == 0
    assert t.get("support_tickets_at_risk", **FR) == 0


def test_a_deadline_passed_while_solved_never_counts() -> None:
    t = _ticket_solved_unanswered()
    assert t.at(at("2026-03-09 09:55")).get("support_tickets_at_risk", **FR) == 0  # closed
    assert t.at(at("2026-03-09 10:30")).get("support_sla_breaches_total", **FR) == 0
    t.send("ticket.reopened", at("2026-03-09 10:30"), ticket_id="t1")  # after 10:00
    assert t.at(at("2026-03-09 12:00")).get("support_sla_breaches_total", **FR) == 0
    assert t.get("support_tickets_at_risk", **FR) == 0


def test_a_response_while_solved_ends_the_clock_without_a_breach() -> None:
    t = _ticket_solved_unanswered()
    t.send("ticket.responded", at("2026-03-09 10:10"), ticket_id="t1")  # past 10:00, solved
    t.send("ticket.reopened", at("2026-03-09 10:20"), ticket_id="t1")
    assert t.at(at("2026-03-09 12:00")).get("support_sla_breaches_total", **FR) == 0
    assert t.get("support_tickets_at_risk", **FR) == 0


def test_a_next_reply_running_at_the_solve_goes_on_after_a_reopen() -> None:
    # answered 09:00:10; the customer writes 09:01:40 (next reply due 13:01:40, at risk from
    # 12:37:40); solved 09:03:20 without a reply, reopened 09:05, never answered
    t = Tickets(EMAIL)
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.responded", at("2026-03-09 09:00:10"), ticket_id="t1")
    t.send("ticket.customer_replied", at("2026-03-09 09:01:40"), ticket_id="t1")
    t.send("ticket.solved", at("2026-03-09 09:03:20"), ticket_id="t1")
    t.send("ticket.reopened", at("2026-03-09 09:05"), ticket_id="t1")
    assert t.at(at("2026-03-09 12:37:39")).get("support_tickets_at_risk", **NR) == 0
    assert t.at(at("2026-03-09 12:55")).get("support_tickets_at_risk", **NR) == 1
    assert t.at(at("2026-03-09 13:01:40")).get("support_sla_breaches_total", **NR) == 0
    assert t.at(at("2026-03-09 13:05")).get("support_sla_breaches_total", **NR) == 1
    assert t.get("support_sla_breaches_total", **FR) == 0  # answered at 09:00:10


def test_a_priority_change_while_solved_sets_the_target_after_the_reopen() -> None:
    # urgent: first response 10 min. Solved unanswered 09:01:40, urgent 09:02, reopened 09:03:
    # the clock ran from 09:00 (solved is no pause), so it is due 09:10, at risk from 09:09
    t = Tickets({**EMAIL, "priorities": {"urgent": {"first_response": "10m"}}})
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.solved", at("2026-03-09 09:01:40"), ticket_id="t1")
    t.send("ticket.priority_changed", at("2026-03-09 09:02"), ticket_id="t1", priority="urgent")
    t.send("ticket.reopened", at("2026-03-09 09:03"), ticket_id="t1")
    assert t.at(at("2026-03-09 09:09:30")).get("support_tickets_at_risk", **FR) == 1
    assert t.at(at("2026-03-09 09:10:01")).get("support_sla_breaches_total", **FR) == 1


def test_a_clock_running_on_a_solved_ticket_survives_a_restart() -> None:
    # the first test's ticket, the daemon restarted from its snapshot while it is solved
    t = _ticket_solved_unanswered()
    t.at(at("2026-03-09 09:02"))
    data = snapshot.encode(snapshot.capture(t.engine, {}))
    t.engine, _, _ = snapshot.from_bytes(data, t.engine.settings)
    t.pipeline = Pipeline(t.engine, t.stats, event_clock=True, log_burst=0)
    t.send("ticket.reopened", at("2026-03-09 09:03:20"), ticket_id="t1")
    assert t.at(at("2026-03-09 09:55")).get("support_tickets_at_risk", **FR) == 1
    assert t.at(at("2026-03-09 10:00:01")).get("support_sla_breaches_total", **FR) == 1
