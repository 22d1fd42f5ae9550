"""The engine's running counts of open tickets awaiting a first response and overdue one (read by
``tickets_at_risk`` every tick) against hand counts and against a count over every ticket."""

from __future__ import annotations

import random

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Pipeline
from tests.helpdesk.tickets import TICKET_MOVES, Tickets, at, move_fields

T0 = at("2026-03-02 08:00")
EMAIL = {"first_response_seconds": 3600, "resolution_seconds": 8 * 3600}


def _counts(engine: Engine) -> tuple[int, int]:
    q = engine.channels["email"].queues["default"]
    return q.awaiting_first_response, q.overdue_first_response


def _scanned(engine: Engine) -> tuple[int, int]:
    """The same two counts from the tickets themselves (the definition)."""
    awaiting = overdue = 0
    for t in engine.tickets.values():
        if t.q.channel.name != "email" or t.solved_ts is not None:
            continue
        awaiting += t.responses == 0
        first = t.clocks[0]
        overdue += first is not None and first.breached and not first.stopped
    return awaiting, overdue


def test_hand_counted_awaiting_and_overdue_first_responses() -> None:
    s = Tickets(EMAIL)
    for n in range(1, 5):
        s.send("ticket.created", T0 + 60 * n, ticket_id=f"t{n}")
    s.send("ticket.responded", T0 + 600, ticket_id="t1")
    assert _counts(s.at(T0 + 1800).engine) == (3, 0)
    # t2-t4 pass their 1 h deadline (09:02-09:04) without a response
    assert _counts(s.at(T0 + 3600 + 300).engine) == (3, 3)
    s.send("ticket.responded", T0 + 3600 + 400, ticket_id="t2")  # late: no longer overdue
    s.send("ticket.solved", T0 + 3600 + 500, ticket_id="t3")  # solved without a response
    s.send("ticket.status_changed", T0 + 3600 + 600, ticket_id="t4", status="pending")
    assert _counts(s.at(T0 + 3600 + 700).engine) == (1, 1)  # t4: pending keeps it overdue
    s.send("ticket.reopened", T0 + 3600 + 800, ticket_id="t3")  # still never answered
    assert _counts(s.at(T0 + 3600 + 900).engine) == (2, 2)  # open again: overdue again
    s.send("ticket.solved", T0 + 3600 + 1000, ticket_id="t1")
    s.send("ticket.reopened", T0 + 3600 + 1100, ticket_id="t1")  # answered before: not awaiting
    assert _counts(s.at(T0 + 3600 + 1200).engine) == (2, 2)


def test_running_counts_match_the_tickets_through_a_random_stream_and_a_restore() -> None:
    rng = random.Random(11)
    s = Tickets(EMAIL, limits={"max_solved_tickets": 40})
    ids: list[str] = []
    now = T0
    for step in range(3000):
        now += rng.expovariate(1 / 30)
        kind = rng.choices(("ticket.created", *TICKET_MOVES), weights=(5, 3, 2, 1, 1, 1, 1))[0]
        if kind == "ticket.created" or not ids:
            ids.append(f"t{len(ids)}")
            s.send("ticket.created", now, ticket_id=ids[-1])
        else:
            s.send(kind, now, ticket_id=rng.choice(ids), **move_fields(rng, kind))
        if step % 7 == 0:
            s.at(now)  # deadlines decided up to now, as the tick does
        assert _counts(s.engine) == _scanned(s.engine), step
        if step == 1500:
            data = snapshot.encode(snapshot.capture(s.engine, {}))
            s.engine, _, _ = snapshot.from_bytes(data, s.engine.settings)
            s.pipeline = Pipeline(s.engine, s.stats, event_clock=True, log_burst=0)
            assert _counts(s.engine) == _scanned(s.engine)
    awaiting, overdue = _counts(s.at(now + 86400).engine)
    assert (awaiting, overdue) == _scanned(s.engine)
    assert overdue > 0  # the stream did leave tickets overdue (the check was not vacuous)
    assert awaiting >= overdue
