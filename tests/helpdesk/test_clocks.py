"""Help-desk SLA clocks: business hours, holidays, split shifts, DST, pauses, priorities, next
reply, FCR and the ``today`` window. Every deadline below is computed by hand in the comments."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from support_monitor.monitor.clock import TickRoad, quiet_horizon
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.helpdesk.tickets import Tickets, at, office
from tests.support import CONFIG, settings, value


def test_friday_evening_ticket_is_due_monday_morning_and_breaches_there() -> None:
    # Friday 2026-03-06 17:50 + 1 h of 09:00-18:00 Mon-Fri: 10 min on Friday, 50 on Monday.
    t = Tickets(
        {"first_response_seconds": 3600, "calendar": "office"},
        calendars={"office": office()},
    )
    t.send("ticket.created", at("2026-03-06 17:50"), ticket_id="t1")
    assert t.at(at("2026-03-09 09:50")).get("support_sla_breaches_total", sla="first_response") == 0
    assert (
        t.at(at("2026-03-09 09:50:01")).get("support_sla_breaches_total", sla="first_response") == 1
    )


def test_at_risk_counts_business_time_too() -> None:
    # Lead 10% of 1 h = 6 min of business time before Monday 09:50, i.e. Monday 09:44.
    t = Tickets(
        {"first_response_seconds": 3600, "calendar": "office"},
        calendars={"office": office()},
    )
    t.send("ticket.created", at("2026-03-06 17:50"), ticket_id="t1")
    assert t.at(at("2026-03-07 12:00")).get("support_tickets_at_risk", sla="first_response") == 0
    assert t.at(at("2026-03-09 09:43:59")).get("support_tickets_at_risk", sla="first_response") == 0
    assert t.at(at("2026-03-09 09:44")).get("support_tickets_at_risk", sla="first_response") == 1


def test_a_holiday_monday_moves_the_deadline_to_tuesday() -> None:
    t = Tickets(
        {"first_response_seconds": 3600, "calendar": "office"},
        calendars={"office": office(holidays=("2026-03-09",))},
    )
    t.send("ticket.created", at("2026-03-06 17:50"), ticket_id="t1")
    assert t.at(at("2026-03-10 09:50")).get("support_sla_breaches_total", sla="first_response") == 0
    assert (
        t.at(at("2026-03-10 09:50:01")).get("support_sla_breaches_total", sla="first_response") == 1
    )


def test_split_shift_skips_the_lunch_break() -> None:
    # 11:30 + 1 h with 09:00-12:00 and 13:00-17:00: 30 min before lunch, 30 after -> 13:30.
    split = {"mon": ["09:00-12:00", "13:00-17:00"]}
    t = Tickets(
        {"first_response_seconds": 3600, "calendar": "office"},
        calendars={"office": office(hours=split)},
    )
    t.send("ticket.created", at("2026-03-09 11:30"), ticket_id="t1")
    assert t.at(at("2026-03-09 13:30")).get("support_sla_breaches_total", sla="first_response") == 0
    assert (
        t.at(at("2026-03-09 13:30:01")).get("support_sla_breaches_total", sla="first_response") == 1
    )


def test_a_23_hour_dst_day_gives_23_hours_of_business_time() -> None:
    # Sunday 2026-03-29 in Berlin lasts 23 h (02:00 -> 03:00). With Sunday open all day and
    # Monday 09:00-18:00, a 24 h target from Sunday 00:00 gets 23 h on Sunday and the last hour
    # on Monday: due Monday 10:00 (CEST).
    hours = {"sun": ["00:00-24:00"], "mon": ["09:00-18:00"]}
    t = Tickets(
        {"first_response_seconds": 86400, "calendar": "office"},
        calendars={"office": office(hours=hours)},
    )
    t.send("ticket.created", at("2026-03-29 00:00"), ticket_id="t1")
    assert t.at(at("2026-03-30 10:00")).get("support_sla_breaches_total", sla="first_response") == 0
    assert (
        t.at(at("2026-03-30 10:00:01")).get("support_sla_breaches_total", sla="first_response") == 1
    )


def test_a_pause_over_the_weekend_keeps_the_elapsed_time() -> None:
    # Resolution 8 h, pending pauses it. Created Friday 16:00, pending at 17:00 (1 h run),
    # open again Monday 11:00: 7 h left -> Monday 18:00.
    t = Tickets(
        {"resolution_seconds": 8 * 3600, "calendar": "office"},
        calendars={"office": office()},
    )
    t.send("ticket.created", at("2026-03-06 16:00"), ticket_id="t1")
    t.send("ticket.status_changed", at("2026-03-06 17:00"), ticket_id="t1", status="pending")
    assert t.at(at("2026-03-07 12:00")).get("support_tickets_paused") == 1
    t.send("ticket.status_changed", at("2026-03-09 11:00"), ticket_id="t1", status="open")
    assert t.at(at("2026-03-09 11:00")).get("support_tickets_paused") == 0
    assert t.at(at("2026-03-09 18:00")).get("support_sla_breaches_total", sla="resolution") == 0
    assert t.at(at("2026-03-09 18:00:01")).get("support_sla_breaches_total", sla="resolution") == 1


def test_a_clock_without_a_target_can_make_a_ticket_paused_but_not_keep_it_running() -> None:
    """First response 60 s and resolution 300 s; urgent lists only a first response of 20 s, so
    an urgent ticket's resolution clock has no target (pending pauses it, as by default). The
    urgent t1 is answered at +10 s, then goes pending at +20 s: its only clock not stopped is
    the paused target-less resolution clock: paused (until 2026-12-05: not, as no clock with a
    target was left). The normal t2 goes pending at once: its first response (a target) runs
    on, so it is not paused. t3 is in a channel policy with only a resolution target: its
    running first-response clock has no target and does not keep it from being paused."""
    t = Tickets(
        {
            "first_response_seconds": 60,
            "resolution_seconds": 300,
            "priorities": {"urgent": {"first_response": "20s"}},
        }
    )
    start = at("2026-03-02 10:00")
    t.send("ticket.created", start, ticket_id="t1", priority="urgent")
    t.send("ticket.responded", start + 10, ticket_id="t1")
    t.send("ticket.created", start + 15, ticket_id="t2")
    t.send("ticket.status_changed", start + 20, ticket_id="t1", status="pending")
    t.send("ticket.status_changed", start + 20, ticket_id="t2", status="pending")
    assert t.at(start + 100).get("support_tickets_paused") == 1  # t1 alone
    t.send("ticket.status_changed", start + 110, ticket_id="t1", status="open")
    assert t.at(start + 120).get("support_tickets_paused") == 0
    only_resolution = Tickets({"resolution_seconds": 300})
    only_resolution.send("ticket.created", start, ticket_id="t3")
    only_resolution.send("ticket.status_changed", start + 5, ticket_id="t3", status="pending")
    assert only_resolution.at(start + 30).get("support_tickets_paused") == 1


def test_a_priority_change_while_paused_keeps_the_elapsed_time() -> None:
    # normal: resolution 8 h; urgent: 4 h. Created Monday 09:00, pending 10:00 (1 h run),
    # urgent at 11:00 while paused, open at 12:00: 4 h - 1 h = 3 h left -> 15:00.
    t = Tickets(
        {
            "resolution_seconds": 8 * 3600,
            "priorities": {"urgent": {"resolution": "4h"}},
            "calendar": "office",
        },
        calendars={"office": office()},
    )
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.status_changed", at("2026-03-09 10:00"), ticket_id="t1", status="pending")
    t.send("ticket.priority_changed", at("2026-03-09 11:00"), ticket_id="t1", priority="urgent")
    urgent = {"channel": "email", "priority": "urgent"}
    assert (
        value(t.at(at("2026-03-09 11:00")).engine, "support_tickets_open_by_priority", **urgent)
        == 1
    )
    t.send("ticket.status_changed", at("2026-03-09 12:00"), ticket_id="t1", status="open")
    assert t.at(at("2026-03-09 15:00")).get("support_sla_breaches_total", sla="resolution") == 0
    assert t.at(at("2026-03-09 15:00:01")).get("support_sla_breaches_total", sla="resolution") == 1


def test_a_priority_change_past_the_new_target_breaches_at_change_plus_remaining() -> None:
    # 24/7. normal 8 h, urgent 2 h. Created 09:00, urgent at 12:00 (3 h run): the deadline is
    # 12:00 + 2 h - 3 h = 11:00, already past: counted once, stamped 11:00.
    t = Tickets({"resolution_seconds": 8 * 3600, "priorities": {"urgent": {"resolution": "2h"}}})
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.priority_changed", at("2026-03-09 12:00"), ticket_id="t1", priority="urgent")
    assert t.at(at("2026-03-09 12:00:10")).get("support_sla_breaches_total", sla="resolution") == 1
    t.send("ticket.solved", at("2026-03-09 13:00"), ticket_id="t1")
    assert t.get("support_sla_breaches_total", sla="resolution") == 1


@pytest.mark.parametrize("status", ["pending", "on_hold"])
def test_a_pause_at_the_instant_of_such_a_priority_change_keeps_its_breach(status: str) -> None:
    # As above, with a status change at 12:00 too (applied after the priority change: lifecycle
    # order). pending pauses resolution: the pause ends a segment whose deadline, 11:00, has
    # passed, so the breach stands (it was lost when the pause settled nothing at the instant
    # its segment started). on_hold pauses nothing: the timer counts it.
    t = Tickets({"resolution_seconds": 8 * 3600, "priorities": {"urgent": {"resolution": "2h"}}})
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.priority_changed", at("2026-03-09 12:00"), ticket_id="t1", priority="urgent")
    t.send("ticket.status_changed", at("2026-03-09 12:00"), ticket_id="t1", status=status)
    assert t.at(at("2026-03-09 12:00:10")).get("support_sla_breaches_total", sla="resolution") == 1
    # back to normal (8 h) and resumed: the clock passed a deadline of its own, so it is never
    # at risk again and counts no second breach
    t.send("ticket.priority_changed", at("2026-03-09 12:30"), ticket_id="t1", priority="normal")
    t.send("ticket.status_changed", at("2026-03-09 13:00"), ticket_id="t1", status="open")
    # due 13:00 + 8 h - 3 h = 18:00, the lead 48 min: at risk from 17:12 had it not breached
    assert t.at(at("2026-03-09 17:30")).get("support_tickets_at_risk", sla="resolution") == 0
    assert t.at(at("2026-03-09 18:00:10")).get("support_sla_breaches_total", sla="resolution") == 1


def test_next_reply_runs_from_a_customer_reply_to_the_next_response() -> None:
    # 24/7, next reply 2 h. Reply 10:00, response 11:00: met. Reply 13:00, none by 15:00: one
    # breach at 15:00. A second customer reply while a clock runs does not restart it.
    t = Tickets({"first_response_seconds": 3600, "next_reply_seconds": 7200})
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.responded", at("2026-03-09 09:30"), ticket_id="t1")
    t.send("ticket.customer_replied", at("2026-03-09 10:00"), ticket_id="t1")
    t.send("ticket.responded", at("2026-03-09 11:00"), ticket_id="t1")
    t.send("ticket.customer_replied", at("2026-03-09 13:00"), ticket_id="t1")
    t.send("ticket.customer_replied", at("2026-03-09 14:00"), ticket_id="t1")
    assert t.at(at("2026-03-09 14:48")).get("support_tickets_at_risk", sla="next_reply") == 1
    assert t.at(at("2026-03-09 15:00")).get("support_sla_breaches_total", sla="next_reply") == 0
    assert t.at(at("2026-03-09 15:00:01")).get("support_sla_breaches_total", sla="next_reply") == 1
    assert t.get("support_tickets_at_risk", sla="next_reply") == 0


def test_first_contact_resolution_counts_and_ratio() -> None:
    # t1: one response, solved -> FCR. t2: two responses -> not. t3: solved, reopened, solved
    # again: its first solve was FCR (0 responses), the second is not. Solves 4, FCR 2 -> 0.5.
    t = Tickets({"first_response_seconds": 3600})
    start = at("2026-03-09 09:00")
    for tid in ("t1", "t2", "t3"):
        t.send("ticket.created", start, ticket_id=tid)
    t.send("ticket.responded", start + 60, ticket_id="t1")
    t.send("ticket.solved", start + 120, ticket_id="t1")
    t.send("ticket.responded", start + 60, ticket_id="t2")
    t.send("ticket.responded", start + 90, ticket_id="t2")
    t.send("ticket.solved", start + 120, ticket_id="t2")
    t.send("ticket.solved", start + 120, ticket_id="t3")
    t.send("ticket.reopened", start + 130, ticket_id="t3")
    assert t.at(start + 130).get("support_tickets_reopened_total") == 1
    t.send("ticket.solved", start + 140, ticket_id="t3")
    t.at(start + 150)
    assert t.get("support_tickets_solved_first_contact_total") == 2
    assert value(t.engine, "support_fcr_ratio", channel="email", window="5m") == 0.5


def test_backlog_age_is_the_oldest_open_ticket_in_wall_time() -> None:
    t = Tickets({"first_response_seconds": 3600})
    start = at("2026-03-09 09:00")
    t.send("ticket.created", start, ticket_id="old")
    t.send("ticket.created", start + 600, ticket_id="new")
    assert t.at(start + 1000).get("support_ticket_oldest_open_age_seconds") == 1000
    t.send("ticket.solved", start + 1000, ticket_id="old")
    assert t.at(start + 1200).get("support_ticket_oldest_open_age_seconds") == 600
    t.send("ticket.solved", start + 1200, ticket_id="new")
    assert t.at(start + 1200).get("support_ticket_oldest_open_age_seconds") == 0


def test_today_resets_at_the_local_day_start_across_dst() -> None:
    # day_starts_at 00:00 Europe/Berlin; Sunday 2026-03-29 is 23 h long.
    t = Tickets(
        {"first_response_seconds": 3600},
        windows=["5m", "today"],
        timezone="Europe/Berlin",
    )
    t.send("complaint.received", at("2026-03-28 23:59:59"))
    t.send("complaint.received", at("2026-03-29 00:00:01"))
    t.send("complaint.received", at("2026-03-29 23:59:59"))
    day = {"channel": "email", "window": "today"}
    t.at(at("2026-03-29 23:59:59"))
    assert value(t.engine, "support_complaints_window", **day) == 2  # Sunday's two
    assert value(t.at(at("2026-03-30 00:00")).engine, "support_complaints_window", **day) == 0


def test_unknown_status_is_rejected_by_reason() -> None:
    t = Tickets({"first_response_seconds": 3600})
    t.send("ticket.created", at("2026-03-09 09:00"), ticket_id="t1")
    t.send("ticket.status_changed", at("2026-03-09 09:01"), ticket_id="t1", status="waiting")
    t.send("ticket.priority_changed", at("2026-03-09 09:01"), ticket_id="t1", priority="p1")
    assert t.stats.rejected["test", "invalid_value"] == 2


def _replay_road(*, jump: bool) -> tuple[list[tuple[float, float, float]], int]:
    """Friday 17:50 ticket (due Monday 09:50 in business time), next event Tuesday: the
    (tick, breaches, today's complaints) readings whenever they change."""
    channels = dict(CONFIG["channels"])
    channels["email"] = {"queues": ["default"], "first_response_seconds": 3600, "calendar": "o"}
    cfg = settings(
        channels=channels,
        calendars={"o": office()},
        windows=["5m", "today"],
        timezone="Europe/Berlin",
    )
    engine, stats = Engine(cfg), DaemonStats()
    seen: list[tuple[float, float, float]] = []
    email = engine.channels["email"]

    def watch(now: float) -> None:
        # The very numbers support_sla_breaches_total{sla="first_response"} and
        # support_complaints_window{window="today"} show (read directly: this runs every tick).
        breaches = email.queues["default"].breaches[0]
        today = email.windows.total("today").complaints
        if not seen or seen[-1][1:] != (breaches, today):
            seen.append((now, breaches, today))

    horizon = quiet_horizon(cfg) if jump else None
    road = TickRoad(engine, cfg.exporter.tick_seconds, [watch], quiet_horizon=horizon)
    pipeline = Pipeline(engine, stats, event_clock=True, before_event=road.before_event)
    for n, (kind, ts, fields) in enumerate(
        (
            ("ticket.created", at("2026-03-06 17:50"), {"ticket_id": "t1"}),
            ("complaint.received", at("2026-03-06 18:00"), {}),
            ("complaint.received", at("2026-03-10 12:00"), {}),
        )
    ):
        stamp = datetime.fromtimestamp(ts, UTC).isoformat()
        event = {"event_id": f"e{n}", "type": kind, "ts": stamp, "channel": "email", **fields}
        pipeline.process("test", Delivery(json.dumps(event).encode(), f"line:{n}"))
    return seen, road.skipped_ticks


def test_replay_jumping_quiet_days_still_wakes_for_business_deadlines_and_day_starts() -> None:
    cfg = settings()
    stepped, none_skipped = _replay_road(jump=False)
    jumped, skipped = _replay_road(jump=True)
    assert none_skipped == 0
    assert skipped > 2 * 86400 / cfg.exporter.tick_seconds  # most of the weekend was jumped
    assert jumped == stepped
    lateness = cfg.ingest.allowed_lateness
    breach = next(row for row in stepped if row[1] == 1)
    # Decided on the first tick once the clock is past 09:50 + the allowed lateness.
    assert at("2026-03-09 09:50") + lateness < breach[0] <= at("2026-03-09 09:50") + lateness + 5
    # The complaint of Friday 18:00 counted today, gone at Saturday 00:00 local.
    reset = next(row for row in stepped if row[0] >= at("2026-03-07 00:00"))
    assert reset[2] == 0
    assert reset[0] <= at("2026-03-07 00:00") + cfg.exporter.tick_seconds


def test_a_priority_change_past_the_new_target_walks_back_in_business_time() -> None:
    # Created Monday 17:00, urgent (1 h 30 m) on Tuesday 10:00 after 1 h + 1 h of business time:
    # deadline = Tuesday 10:00 + 1.5 h - 2 h, i.e. 30 min of business time back: Tuesday 09:30.
    t = Tickets(
        {
            "resolution_seconds": 8 * 3600,
            "priorities": {"urgent": {"resolution": "1h30m"}},
            "calendar": "office",
        },
        calendars={"office": office()},
    )
    t.send("ticket.created", at("2026-03-09 17:00"), ticket_id="t1")
    t.send("ticket.priority_changed", at("2026-03-10 10:00"), ticket_id="t1", priority="urgent")
    t.at(at("2026-03-10 10:00:10"))
    assert t.get("support_sla_breaches_total", sla="resolution") == 1
    deadline = at("2026-03-10 09:30")
    clock = t.engine.tickets["t1"].clocks[2]
    assert clock is not None
    assert clock.deadline == deadline


def test_a_response_arriving_after_a_later_customer_reply_does_not_answer_it() -> None:
    """In ``ts`` order: created 0, responded 10, customer reply 10.5 (next reply due 30.5),
    nothing after. The response arrives after the reply (0.5 s late, within the lateness): it
    was no answer to it, so the next-reply breach is still counted at 30.5."""
    t0 = at("2026-03-02 10:00")
    for order in ((10.0, 10.5), (10.5, 10.0)):
        desk = Tickets({"first_response_seconds": 30, "next_reply_seconds": 20})
        desk.send("ticket.created", t0, ticket_id="A")
        for offset in order:
            kind = "ticket.responded" if offset == 10.0 else "ticket.customer_replied"
            desk.send(kind, t0 + offset, ticket_id="A")
        assert desk.at(t0 + 30).get("support_sla_breaches_total", sla="next_reply") == 0
        assert desk.at(t0 + 31).get("support_sla_breaches_total", sla="next_reply") == 1, order
        assert desk.get("support_sla_breaches_total", sla="first_response") == 0


def test_a_status_change_stamped_before_the_solve_that_arrives_after_it_is_applied() -> None:
    """on_hold at 10, solved at 11; the status change arrives after the solve (1 s late): it
    happened while the ticket was open, so it is applied (no reject, nothing dead-lettered)."""
    t0 = at("2026-03-02 10:00")
    desk = Tickets({"first_response_seconds": 30, "resolution_seconds": 60})
    desk.send("ticket.created", t0, ticket_id="H")
    desk.send("ticket.responded", t0 + 2, ticket_id="H")
    desk.send("ticket.solved", t0 + 11, ticket_id="H")
    desk.send("ticket.status_changed", t0 + 10, ticket_id="H", status="on_hold")
    desk.at(t0 + 30)
    assert sum(desk.stats.rejected.values()) == 0
    assert desk.engine.take_expired_early() == []
    assert desk.get("support_tickets_solved_total") == 1
    assert desk.engine.tickets["H"].status == "on_hold"
