"""One ticket's events that arrive out of order within the allowed lateness (5 s) give the
numbers of the same events in ``ts`` order. Each case is fed twice through the real pipeline, in
``ts`` order and in the arrival order given, and both must equal numbers worked out by hand.
24/7 clocks (no calendar); seconds after 09:00:00 UTC."""

from __future__ import annotations

import json
import math
import random
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.helpdesk.tickets import TICKET_MOVES, Tickets, move_fields
from tests.support import settings, value

T0 = 1_772_442_000.0  # 2026-03-02 09:00:00 UTC

Move = tuple[float, str, dict[str, str]]


def _replay(email: dict[str, Any], moves: list[Move], arrival: list[int], until: float) -> Tickets:
    t = Tickets(email)
    for index in arrival:
        at, kind, fields = moves[index]
        t.send(f"ticket.{kind}", T0 + at, ticket_id="t1", **fields)
    return t.at(T0 + until)


def _both(
    email: dict[str, Any], moves: list[Move], arrival: list[int], until: float
) -> list[Tickets]:
    in_order = sorted(range(len(moves)), key=lambda i: moves[i][0])
    return [_replay(email, moves, order, until) for order in (in_order, arrival)]


NEXT_REPLY = {"first_response_seconds": 3600, "next_reply_seconds": 120}
URGENT_NR = {**NEXT_REPLY, "priorities": {"urgent": {"next_reply": "40s"}}}


@pytest.mark.parametrize(
    ("email", "moves", "arrival", "until", "sla", "breaches"),
    [
        pytest.param(
            # urgent first response 20 s. The change at 28 s leaves the clock 8 s past its new
            # target: a breach (stamped at 20 s). The response at 30 s arrives before it.
            {"first_response_seconds": 3600, "priorities": {"urgent": {"first_response": "20s"}}},
            [
                (0, "created", {}),
                (28, "priority_changed", {"priority": "urgent"}),
                (30, "responded", {}),
            ],
            [0, 2, 1],
            60,
            "first_response",
            1,
            id="late-priority-change-behind-the-response",
        ),
        pytest.param(
            # urgent next reply 40 s. Urgent at 27 s, customer reply at 30 s: the clock runs from
            # 30 s to the response at 68 s (38 s of 40): no breach. The change arrives last.
            URGENT_NR,
            [
                (0, "created", {}),
                (5, "responded", {}),
                (27, "priority_changed", {"priority": "urgent"}),
                (30, "customer_replied", {}),
                (68, "responded", {}),
            ],
            [0, 1, 3, 2, 4],
            200,
            "next_reply",
            0,
            id="late-priority-change-before-a-reply-clock-starts",
        ),
        pytest.param(
            # resolution 100 s, urgent 60 s. Solved at 5 s, urgent at 27 s, reopened at 30 s: the
            # new resolution clock runs under urgent, deadline 90 s; solved again at 89 s: met.
            {"resolution_seconds": 100, "priorities": {"urgent": {"resolution": "60s"}}},
            [
                (0, "created", {}),
                (5, "solved", {}),
                (27, "priority_changed", {"priority": "urgent"}),
                (30, "reopened", {}),
                (89, "solved", {}),
            ],
            [0, 1, 3, 2, 4],
            200,
            "resolution",
            0,
            id="late-priority-change-before-a-reopen",
        ),
        pytest.param(
            # next reply 20 s. Reopened at 27 s, customer reply at 30 s (arrives first): the
            # clock starts at 30 s and breaches at 50 s with no response.
            {"first_response_seconds": 3600, "next_reply_seconds": 20},
            [
                (0, "created", {}),
                (2, "responded", {}),
                (10, "solved", {}),
                (27, "reopened", {}),
                (30, "customer_replied", {}),
            ],
            [0, 1, 2, 4, 3],
            100,
            "next_reply",
            1,
            id="customer-reply-before-its-reopen",
        ),
        pytest.param(
            # next reply 20 s. Customer reply at 26 s, answered at 28 s (arrives first): the
            # clock ran 2 s. No breach.
            {"first_response_seconds": 3600, "next_reply_seconds": 20},
            [
                (0, "created", {}),
                (2, "responded", {}),
                (26, "customer_replied", {}),
                (28, "responded", {}),
            ],
            [0, 1, 3, 2],
            100,
            "next_reply",
            0,
            id="customer-reply-behind-its-response",
        ),
        pytest.param(
            # resolution 100 s, pending pauses it. Pending 10-12 s (arriving reversed): 10 s run
            # before, 90 s after 12 s: deadline 102 s; unsolved at 150 s: one breach.
            {"resolution_seconds": 100},
            [
                (0, "created", {}),
                (10, "status_changed", {"status": "pending"}),
                (12, "status_changed", {"status": "open"}),
            ],
            [0, 2, 1],
            150,
            "resolution",
            1,
            id="two-status-changes-reversed",
        ),
    ],
)
def test_out_of_order_gives_the_in_order_breaches(
    *,
    email: dict[str, Any],
    moves: list[Move],
    arrival: list[int],
    until: float,
    sla: str,
    breaches: int,
) -> None:
    for t in _both(email, moves, arrival, until):
        assert t.get("support_sla_breaches_total", sla=sla) == breaches
        assert t.get("support_tickets_paused") == 0


def test_two_status_changes_reversed_breach_at_the_paused_deadline() -> None:
    # as the case above: resolution deadline 100 s + 2 s paused = 102 s
    moves: list[Move] = [
        (0, "created", {}),
        (10, "status_changed", {"status": "pending"}),
        (12, "status_changed", {"status": "open"}),
    ]
    for until, breaches in ((102, 0), (102.5, 1)):
        for t in _both({"resolution_seconds": 100}, moves, [0, 2, 1], until):
            assert t.get("support_sla_breaches_total", sla="resolution") == breaches, until


def test_a_late_response_before_the_solve_is_not_first_contact() -> None:
    # Responses at 21 s and 22 s, solved at 24 s; the 22 s response arrives after the solve.
    # Two responses: not a first-contact solve. The first response took 21 s.
    moves: list[Move] = [
        (0, "created", {}),
        (21, "responded", {}),
        (22, "responded", {}),
        (24, "solved", {}),
    ]
    for t in _both({"first_response_seconds": 3600}, moves, [0, 1, 3, 2], 60):
        assert t.get("support_tickets_solved_total") == 1
        assert t.get("support_tickets_solved_first_contact_total") == 0
        hist = t.engine.channels["email"].queues["default"].fr_hist
        assert (hist.count, hist.sum) == (1, 21.0)


def test_the_first_response_observed_is_the_earliest_stamped() -> None:
    # Responses at 21 s and 23 s; the 23 s one arrives first: 21 s is observed.
    moves: list[Move] = [(0, "created", {}), (21, "responded", {}), (23, "responded", {})]
    for t in _both({"first_response_seconds": 3600}, moves, [0, 2, 1], 60):
        hist = t.engine.channels["email"].queues["default"].fr_hist
        assert (hist.count, hist.sum) == (1, 21.0)


def test_an_event_stamped_before_its_ticket_was_created_is_unknown() -> None:
    # A response stamped 1 s before its ticket's creation, arriving after it: in ts order it
    # refers to no ticket (unknown_ticket), whatever the arrival order.
    for order in ([0, 1], [1, 0]):
        t = _replay(
            {"first_response_seconds": 3600},
            [(10, "created", {}), (9, "responded", {})],
            order,
            60,
        )
        t.pipeline.take_deferred()  # the held response's verdict, counted as a reject
        assert t.stats.rejected["test", "unknown_ticket"] == 1
        assert t.engine.channels["email"].queues["default"].fr_hist.count == 0


RANDOM_EMAIL = {
    "first_response_seconds": 40,
    "next_reply_seconds": 25,
    "resolution_seconds": 90,
    "priorities": {
        "urgent": {"first_response": "15s", "next_reply": "10s", "resolution": "30s"},
        "low": {"first_response": "80s", "resolution": "200s"},
    },
}
"""Targets of seconds, so that random streams of a few seconds cross their deadlines."""


def _rows(t: Tickets) -> dict[tuple[str, tuple[tuple[str, str], ...]], object]:
    return {
        (r.name, r.labels): "nan" if math.isnan(r.value) else r.value
        for r in series(t.engine)
        if ("channel", "email") in r.labels
    }


def _random_stream(rng: random.Random) -> list[tuple[float, str, str, dict[str, str]]]:
    """One to three tickets, each with up to eight random events after its creation, no two
    of one ticket at the same instant (same-instant events of one kind have no ``ts`` order)."""
    stream = []
    for k in range(rng.randint(1, 3)):
        ts = rng.choice([0.0, 0.5, 1.0, 2.0])
        priority = rng.choice(["low", "normal", "urgent"])
        stream.append((ts, "ticket.created", f"t{k}", {"priority": priority}))
        for _ in range(rng.randint(1, 8)):
            ts += rng.choice([0.25, 1.0, 2.0, 3.0, 7.0, 12.0])
            kind = rng.choice(TICKET_MOVES)
            stream.append((ts, kind, f"t{k}", move_fields(rng, kind)))
    return stream


@pytest.mark.parametrize("seed", range(8))
def test_random_ticket_streams_delivered_late_equal_them_in_order(seed: int) -> None:
    """Each event delayed by up to 4.9 s (within the 5 s lateness), so events of a ticket
    arrive in any order: every email row and every reject equal those of the ``ts`` order."""
    rng = random.Random(seed)
    for _ in range(25):
        stream = _random_stream(rng)
        delays = [rng.uniform(0, 4.9) for _ in stream]
        until = max(s[0] for s in stream) + 300
        results = []
        for order in (
            sorted(range(len(stream)), key=lambda i: (stream[i][0], i)),
            sorted(range(len(stream)), key=lambda i: (stream[i][0] + delays[i], i)),
        ):
            t = Tickets(RANDOM_EMAIL)
            for i in order:
                ts, kind, ticket_id, fields = stream[i]
                t.send(kind, T0 + ts, ticket_id=ticket_id, **fields)
            t.at(T0 + until)
            t.pipeline.take_deferred()
            results.append((_rows(t), dict(t.stats.rejected)))
        assert results[1] == results[0], stream


def test_over_the_bound_a_ticket_event_still_applies_after_its_ticket_s_earlier_ones() -> None:
    # One event may wait (max_early_outcomes 1). Urgent first response 20 s: the change at
    # 28 s leaves the clock past it, a breach, in either arrival order; the second event finds
    # no room and applies at once, after the held one when that is stamped before it.
    email = {
        "first_response_seconds": 3600,
        "priorities": {"urgent": {"first_response": "20s"}},
    }
    moves: list[Move] = [
        (0, "created", {}),
        (28, "priority_changed", {"priority": "urgent"}),
        (30, "responded", {}),
    ]
    for arrival in ([0, 1, 2], [0, 2, 1]):
        t = Tickets(email, limits={"max_early_outcomes": 1})
        for index in arrival:
            at, kind, fields = moves[index]
            t.send(f"ticket.{kind}", T0 + at, ticket_id="t1", **fields)
        t.at(T0 + 60)
        assert t.get("support_sla_breaches_total", sla="first_response") == 1, arrival
        hist = t.engine.channels["email"].queues["default"].fr_hist
        assert (hist.count, hist.sum) == (1, 30.0)


def test_before_the_first_tick_a_live_daemon_applies_ticket_events_at_once() -> None:
    # A live (wall-clock) pipeline whose clock has not ticked yet: no watermark would pass a
    # held event, so the ticket's events apply as they come.
    engine = Engine(settings())
    pipeline = Pipeline(engine, DaemonStats(), event_clock=False, log_burst=0)
    start = time.time() - 120
    for n, (after, kind) in enumerate(((0, "created"), (30, "responded"), (60, "solved"))):
        event = {
            "event_id": f"e{n}",
            "type": f"ticket.{kind}",
            "ts": datetime.fromtimestamp(start + after, UTC).isoformat(),
            "channel": "email",
            "ticket_id": "t1",
        }
        assert pipeline.process("test", Delivery(json.dumps(event).encode(), f"line:{n}")) is None
    assert engine.early_outcomes_held == 0
    assert value(engine, "support_tickets_solved_total", channel="email", queue="default") == 1
