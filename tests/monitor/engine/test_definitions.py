"""Each metric definition of docs/metrics.md on hand-computed cases, edges included."""

from __future__ import annotations

import json
import math

import pytest

from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.exporter import EngineCollector, render
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.monitor.engine.draining import run
from tests.support import CONFIG, T0, Stream, settings, value

V = {"channel": "voice", "queue": "billing"}
E = {"channel": "email", "queue": "default"}


def _contact(s: Stream, cid: str, queued: float, **outcome: float) -> None:
    s.add("contact.queued", queued, "voice", queue="billing", contact_id=cid)
    for kind, at in outcome.items():
        s.add(f"contact.{kind}", at, "voice", contact_id=cid)


def test_answer_at_exactly_t_is_in_sla_and_not_breached() -> None:
    s = Stream()
    _contact(s, "c1", 0, answered=20)
    engine, _ = run(s.lines, until=100)
    assert value(engine, "support_contacts_answered_total", **V) == 1
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 1
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 0
    hist = engine.channels["voice"].queues["billing"].wait_hist
    assert dict(hist.cumulative())["20.0"] == 1
    assert dict(hist.cumulative())["15.0"] == 0


def test_answer_one_second_late_is_a_breach_even_before_the_timer_fires() -> None:
    s = Stream()
    _contact(s, "c1", 0, answered=21)
    engine, _ = run(s.lines)  # no flush beyond the last event: decided by the outcome itself
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 0
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1


def test_abandon_at_exactly_the_short_threshold_is_long() -> None:
    s = Stream()
    _contact(s, "c1", 0, abandoned=5)
    _contact(s, "c2", 0, abandoned=4.5)
    engine, _ = run(s.lines)
    assert value(engine, "support_contacts_abandoned_total", **V) == 2
    assert value(engine, "support_contacts_abandoned_short_total", **V) == 1
    assert value(engine, "support_contacts_abandoned_in_sla_total", **V) == 2
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 0


def test_breach_while_still_waiting_counts_at_the_deadline() -> None:
    s = Stream()
    _contact(s, "c1", 0)
    at_deadline, _ = run(s.lines, until=20)
    assert value(at_deadline, "support_sla_breaches_total", **V, sla="answer") == 0
    assert value(at_deadline, "support_queue_breached_waiting", **V) == 0
    assert value(at_deadline, "support_queue_oldest_wait_seconds", **V) == 20
    past, _ = run(s.lines, until=21)
    assert value(past, "support_sla_breaches_total", **V, sla="answer") == 1
    assert value(past, "support_queue_breached_waiting", **V) == 1
    assert value(past, "support_queue_waiting", **V) == 1
    assert value(past, "support_queue_oldest_wait_seconds", **V) == 21
    # the breach belongs to the window holding its deadline (t=20), not the time it was noticed
    late, _ = run(s.lines, until=20 + 300)
    assert late.channels["voice"].windows.total("5m").breaches_answer == 0
    assert late.channels["voice"].windows.total("1h").breaches_answer == 1
    assert value(late, "support_queue_oldest_wait_seconds", **V) == 320


@pytest.mark.parametrize("ordered", [True, False])
def test_breached_waiting_is_current_while_the_breach_waits_for_the_watermark(
    ordered: bool,
) -> None:
    # A live clock: the engine's clock moves to 23 s (the watermark is 18 s, lateness 5 s).
    # c1 (queued 0, T 20) has waited 23 s: it is past T now, on the board as on the oldest
    # wait, while its breach is counted only once the watermark passes 20 (a late answer
    # stamped before 20 may still come). ``ordered=False``: c0 queued at 1 arrives first.
    s = Stream()
    if not ordered:
        s.add("contact.queued", 1, "voice", queue="billing", contact_id="c0")
    _contact(s, "c1", 0)
    _contact(s, "c2", 2.5)  # waited 20.5 s: past T too
    _contact(s, "c3", 3)  # waited exactly 20 s: not past T
    engine = Engine(settings())
    pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)
    for i, line in enumerate(s.lines):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    engine.advance(T0 + 23)
    rows = {
        row.labels: row.value
        for row in series(engine)
        if row.name == "support_queue_breached_waiting"
    }
    past = 3 if not ordered else 2  # c0 (waited 22 s) too
    assert rows[tuple(sorted(V.items()))] == past
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 0
    body = render(EngineCollector(engine)).decode()
    sample = 'support_queue_breached_waiting{channel="voice",queue="billing"}'
    assert f"{sample} {float(past)}" in body.splitlines()
    engine.advance(T0 + 25.5)  # the watermark passes 20 (c1) and 20.5 (c2)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1  # c1
    assert value(engine, "support_queue_breached_waiting", **V) == past + 1  # c3 past T too


def _fed(s: Stream, cfg: Settings | None = None) -> Engine:
    engine = Engine(cfg or settings())
    pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)
    for i, line in enumerate(s.lines):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    return engine


def test_breached_waiting_counts_a_contact_queued_out_of_order_into_an_empty_queue() -> None:
    # b (queued 90) arrives after a (100, answered 101): the queue was empty, so it counts as
    # in order again, but b waits on its own timer. At 112 it has waited 22 s > T = 20.
    s = Stream()
    s.add("contact.queued", 100, "voice", queue="billing", contact_id="a")
    s.add("contact.answered", 101, "voice", contact_id="a")
    s.add("contact.queued", 90, "voice", queue="billing", contact_id="b")
    engine = _fed(s)
    engine.advance(T0 + 109.5)
    assert value(engine, "support_queue_breached_waiting", **V) == 0  # waited 19.5 s
    engine.advance(T0 + 112)
    assert value(engine, "support_queue_breached_waiting", **V) == 1
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 0  # watermark 107


def test_breached_waiting_follows_a_raised_t_at_the_clock() -> None:
    # a (queued 0) breached at 20 under T = 20; a reload at 26 raises T to 30: a leaves the
    # gauge (its wait is under the new T) and is back once it has waited more than 30 s.
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    engine = _fed(s)
    engine.advance(T0 + 26)
    assert value(engine, "support_queue_breached_waiting", **V) == 1
    raised = json.loads(json.dumps(CONFIG))
    raised["channels"]["voice"]["answer_seconds"] = 30
    engine.reconfigure(parse_settings(raised))
    assert value(engine, "support_queue_breached_waiting", **V) == 0
    engine.advance(T0 + 30)
    assert value(engine, "support_queue_breached_waiting", **V) == 0  # exactly T
    engine.advance(T0 + 32)
    assert value(engine, "support_queue_breached_waiting", **V) == 1
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1  # once


def test_abandon_after_deadline_was_breached_and_before_was_not() -> None:
    s = Stream()
    _contact(s, "late", 0, abandoned=25)
    _contact(s, "early", 1, abandoned=11)
    engine, _ = run(s.lines, until=1000)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1
    assert value(engine, "support_contacts_abandoned_in_sla_total", **V) == 1
    assert value(engine, "support_queue_breached_waiting", **V) == 0
    assert value(engine, "support_queue_waiting", **V) == 0


def test_breached_then_answered_leaves_the_breached_waiting_gauge() -> None:
    s = Stream()
    _contact(s, "c1", 0)
    s.add("contact.queued", 100, "voice", queue="tech", contact_id="x")  # moves the clock
    s.add("contact.answered", 101, "voice", contact_id="c1")
    engine, _ = run(s.lines)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1
    assert value(engine, "support_queue_breached_waiting", **V) == 0
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 0


def test_duplicate_event_ids_are_applied_once() -> None:
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1", event_id="same")
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1", event_id="same")
    s.add("contact.answered", 3, "voice", contact_id="c1", event_id="ans")
    s.add("contact.answered", 3, "voice", contact_id="c1", event_id="ans")
    engine, stats = run(s.lines)
    assert value(engine, "support_contacts_queued_total", **V) == 1
    assert value(engine, "support_contacts_answered_total", **V) == 1
    assert stats.duplicates["test"] == 2
    assert sum(stats.rejected.values()) == 0


def test_out_of_order_within_lateness_is_on_time() -> None:
    s = Stream()
    _contact(s, "c1", 0)
    s.add("contact.queued", 22, "voice", queue="tech", contact_id="other")  # clock 22, mark 17
    s.add("contact.answered", 19, "voice", contact_id="c1")  # delivered late, within 5 s
    engine, _ = run(s.lines, until=1000)
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 1
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 0


def test_later_than_lateness_keeps_the_breach_already_counted() -> None:
    s = Stream()
    _contact(s, "c1", 0)
    s.add("contact.queued", 30, "voice", queue="tech", contact_id="other")  # mark 25 > 20
    s.add("contact.answered", 19, "voice", contact_id="c1")
    engine, _ = run(s.lines)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 1


@pytest.mark.parametrize(
    ("clock", "breached"),
    [(25.0, 0), (25.5, 1), (25.001, 1), (24.999, 0)],
)
def test_lateness_is_measured_from_the_clock_not_its_last_whole_second(
    clock: float, breached: int
) -> None:
    # Deadline 20, lateness 5: an answer stamped 19 that arrives once the clock is past 25 is
    # later than the allowed lateness (a live clock would have decided the deadline), also
    # when the replay clock moved past 25 within the second it entered at 24.0 or 25.0 (a
    # replay decides deadlines as the clock enters each whole second).
    s = Stream()
    _contact(s, "c1", 0)
    s.add("contact.queued", math.floor(clock), "voice", queue="tech", contact_id="first")
    s.add("contact.queued", clock, "voice", queue="tech", contact_id="other")
    s.add("contact.answered", 19, "voice", contact_id="c1")
    engine, _ = run(s.lines)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == breached
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 1


def test_zero_lateness_decides_at_the_clock() -> None:
    cfg = settings(ingest={"allowed_lateness": 0})
    s = Stream()
    _contact(s, "c1", 0)
    s.add("contact.queued", 21, "voice", queue="tech", contact_id="other")
    engine, _ = run(s.lines, cfg)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1


def test_unknown_ids_and_invalid_transitions_are_rejected_by_reason() -> None:
    s = Stream()
    s.add("contact.answered", 0, "voice", contact_id="ghost")
    s.add("ticket.solved", 0, "email", ticket_id="ghost")
    _contact(s, "c1", 1, answered=2)
    s.add("contact.abandoned", 3, "voice", contact_id="c1")
    s.add("contact.queued", 4, "voice", queue="nope", contact_id="c2")
    s.add("contact.queued", 4, "voice", queue="default", contact_id="c3")
    s.add("ticket.created", 5, "voice", queue="default", ticket_id="t-on-voice")
    s.add("contact.queued", 5, "email", contact_id="c4")
    s.add("contact.queued", 5, "fax", contact_id="c5")
    engine, stats = run(s.lines)
    assert stats.rejected == {
        ("test", "unknown_contact"): 1,
        ("test", "unknown_ticket"): 1,
        ("test", "invalid_transition"): 1,
        ("test", "unknown_queue"): 1,
        ("test", "wrong_channel_kind"): 1,
        ("test", "unknown_channel"): 1,
    }
    assert value(engine, "support_contacts_queued_total", channel="voice", queue="default") == 1
    assert "nope" not in engine.channels["voice"].queues


def test_ended_while_waiting_is_an_abandon_and_handle_time_after_answer() -> None:
    s = Stream()
    _contact(s, "c2", 0, answered=10)
    _contact(s, "c1", 0, ended=30)
    s.add("contact.ended", 130, "voice", contact_id="c2")
    engine, _ = run(s.lines)
    assert value(engine, "support_contacts_abandoned_total", **V) == 1
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1
    handle = engine.channels["voice"].queues["billing"].handle_hist
    assert handle.count == 1
    assert handle.sum == 120
    assert dict(handle.cumulative())["120.0"] == 1
    assert dict(handle.cumulative())["60.0"] == 0
    assert "c2" not in engine.contacts


def test_service_level_sums_counts_across_queues_never_averages() -> None:
    s = Stream()
    _contact(s, "b1", 0, answered=10)  # billing: 1 of 1 in SLA
    for i, wait in enumerate((5, 30, 40)):  # tech: 1 of 3 in SLA
        s.add("contact.queued", 0, "voice", queue="tech", contact_id=f"t{i}")
        s.add("contact.answered", wait, "voice", contact_id=f"t{i}")
    engine, _ = run(s.lines, until=60)
    assert value(engine, "support_service_level_ratio", channel="voice", window="5m") == 0.5


def test_short_abandons_leave_the_denominator() -> None:
    s = Stream()
    _contact(s, "a1", 0, answered=10)
    _contact(s, "a2", 0, answered=15)
    _contact(s, "s1", 0, abandoned=2)  # short
    _contact(s, "l1", 0, abandoned=30)  # long, breached
    engine, _ = run(s.lines, until=60)
    assert value(engine, "support_service_level_ratio", channel="voice", window="5m") == 2 / 3
    assert value(engine, "support_abandon_ratio", channel="voice", window="5m") == 1 / 3


def test_empty_windows_are_nan() -> None:
    engine, _ = run([], until=0)
    for name in ("support_service_level_ratio", "support_abandon_ratio", "support_csat_ratio"):
        assert math.isnan(value(engine, name, channel="voice", window="5m"))
    assert value(engine, "support_complaints_window", channel="voice", window="5m") == 0


@pytest.mark.parametrize(("now", "in_5m"), [(299, 1), (300, 0), (299.5, 1)])
def test_window_edge_is_left_open(now: float, in_5m: int) -> None:
    s = Stream()
    _contact(s, "c1", -10, answered=0)
    engine, _ = run(s.lines, until=now)
    assert engine.channels["voice"].windows.total("5m").answered == in_5m
    assert engine.channels["voice"].windows.total("1h").answered == 1


def test_csat_and_complaints() -> None:
    s = Stream()
    for rating in (5, 4, 3, 1):
        s.add("ticket.rated", 1, "chat", rating=rating)
    s.add("ticket.created", 2, "email", ticket_id="t1", tags=["vip", "complaint"])
    s.add("ticket.rated", 3, "voice", ticket_id="t1", rating=5)  # counted on the ticket's channel
    s.add("complaint.received", 4, "voice")
    s.add("complaint.received", 5, "voice", category="billing")
    engine, _ = run(s.lines, settings(ingest={"complaint_categories": ["billing"]}), until=10)
    assert value(engine, "support_csat_ratio", channel="chat", window="5m") == 0.5
    assert value(engine, "support_csat_ratings_total", channel="chat", rating="3") == 1
    assert value(engine, "support_csat_ratings_total", channel="email", rating="5") == 1
    assert value(engine, "support_complaints_total", channel="email", category="uncategorized") == 1
    assert value(engine, "support_complaints_total", channel="voice", category="billing") == 1
    assert value(engine, "support_complaints_window", channel="voice", window="5m") == 2
    assert value(engine, "support_complaints_window", channel="email", window="1h") == 1


def test_unknown_complaint_category_counts_as_other() -> None:
    s = Stream()
    s.add("complaint.received", 1, "chat", category="zzz-random")
    engine, _ = run(s.lines, settings(ingest={"complaint_categories": ["billing"]}))
    assert engine.channels["chat"].complaints == {"billing": 0, "uncategorized": 0, "other": 1}


def test_without_configured_categories_the_first_ones_seen_are_kept() -> None:
    s = Stream()
    for i in range(5):
        s.add("complaint.received", i, "chat", category=f"c{i}")
    s.add("complaint.received", 6, "voice", category="c1")
    s.add("complaint.received", 7, "voice", category="bad label!")
    engine, _ = run(s.lines, settings(ingest={"max_complaint_categories": 3}))
    assert engine.channels["chat"].complaints == {
        "uncategorized": 0,
        "other": 2,
        "c0": 1,
        "c1": 1,
        "c2": 1,
    }
    assert engine.channels["voice"].complaints == {"uncategorized": 0, "other": 1, "c1": 1}


@pytest.mark.parametrize(
    ("until", "fr_breach", "at_risk"),
    [(3239, 0, 0), (3240, 0, 1), (3600, 0, 1), (3601, 1, 0)],
)
def test_first_response_breach_and_at_risk_edges(
    until: float, fr_breach: int, at_risk: int
) -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    engine, _ = run(s.lines, until=until)
    assert value(engine, "support_sla_breaches_total", **E, sla="first_response") == fr_breach
    assert value(engine, "support_tickets_at_risk", **E, sla="first_response") == at_risk
    assert value(engine, "support_tickets_open", **E) == 1


def test_response_stops_the_first_response_clock() -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("ticket.responded", 3300, "email", ticket_id="t1")
    s.add("ticket.responded", 4000, "email", ticket_id="t1")
    engine, _ = run(s.lines, until=5000)
    assert value(engine, "support_sla_breaches_total", **E, sla="first_response") == 0
    assert value(engine, "support_tickets_at_risk", **E, sla="first_response") == 0
    fr = engine.channels["email"].queues["default"].fr_hist
    assert (fr.count, fr.sum) == (1, 3300)


def test_reopened_ticket_restarts_the_resolution_clock() -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("ticket.solved", 1000, "email", ticket_id="t1")
    s.add("ticket.reopened", 2000, "email", ticket_id="t1")
    day = 86400
    before, _ = run(s.lines, until=2000 + day)
    assert value(before, "support_sla_breaches_total", **E, sla="resolution") == 0
    # never answered, and open again at its first-response deadline (3600): breached there
    # (only a response ends that clock; the solve at 1000 ended the resolution clock)
    assert value(before, "support_sla_breaches_total", **E, sla="first_response") == 1
    assert value(before, "support_tickets_open", **E) == 1
    assert value(before, "support_tickets_solved_total", **E) == 1
    assert value(before, "support_tickets_at_risk", **E, sla="resolution") == 1
    after, _ = run(s.lines, until=2000 + day + 1)
    assert value(after, "support_sla_breaches_total", **E, sla="resolution") == 1
    assert value(after, "support_tickets_at_risk", **E, sla="resolution") == 0


def test_solve_after_resolution_deadline_breaches_once() -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("ticket.responded", 10, "email", ticket_id="t1")
    s.add("ticket.solved", 90000, "email", ticket_id="t1")
    s.add("ticket.reopened", 90001, "email", ticket_id="t1")
    engine, _ = run(s.lines, until=90001 + 2 * 86400)
    assert value(engine, "support_sla_breaches_total", **E, sla="resolution") == 1
    res = engine.channels["email"].queues["default"].res_hist
    assert (res.count, res.sum) == (1, 90000)


def test_label_values_only_from_config_under_a_flood() -> None:
    s = Stream()
    for i in range(2000):
        s.add("contact.queued", i, "voice", queue=f"q{i}", contact_id=f"c{i}")
    engine, stats = run(s.lines)
    assert set(engine.channels["voice"].queues) == {"billing", "tech"}
    assert stats.rejected[("test", "unknown_queue")] == 2000
    assert not engine.contacts


def test_event_time_is_the_clock_in_replay() -> None:
    s = Stream()
    _contact(s, "c1", 0)
    engine, _ = run(s.lines)
    assert engine.now == T0


def test_reply_or_solve_exactly_at_the_deadline_is_on_time() -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("ticket.responded", 3600, "email", ticket_id="t1")
    s.add("ticket.solved", 86400, "email", ticket_id="t1")
    s.add("ticket.created", 10, "email", ticket_id="t2")
    s.add("ticket.solved", 86410.5, "email", ticket_id="t2")
    engine, _ = run(s.lines, until=200_000)
    # t1 replied and solved exactly at its deadlines: on time; t2 never replied, solved 0.5 s late
    assert value(engine, "support_sla_breaches_total", **E, sla="first_response") == 1
    assert value(engine, "support_sla_breaches_total", **E, sla="resolution") == 1
