"""Agent states, occupancy over the windows, implied states, late and superseded events."""

from __future__ import annotations

import json
import math
import random

import pytest

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.workforce import MAX_AGENT_LOG, Workforce
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import T0, Stream, run, settings
from tests.workforce.helpers import get, occupancy, rows, state_ms


def _last_line_after_a_snapshot(lines: list[bytes], taken: float, until: float) -> Engine:
    """The engine of ``lines`` but the last, run to ``T0 + taken``, through a snapshot; then
    the last line, and the clock to ``T0 + until``."""
    before, _ = run(lines[:-1], until=taken)
    restored = snapshot.restore(snapshot.capture(before, {}), before.settings)
    pipeline = Pipeline(restored, DaemonStats(), event_clock=True, log_burst=0)
    pipeline.process("test", Delivery(lines[-1], "line:last"))
    restored.flush(T0 + until)
    return restored


def hand_case(stream: Stream) -> None:
    """The hand-computed case of ``test_occupancy_by_hand`` (times in s after T0)."""
    stream.add("agent.state", 0.25, "voice", agent_id="a1", state="available")
    stream.add("agent.state", 10.5, "voice", agent_id="a2", state="available")
    stream.add("agent.state", 20.75, "voice", agent_id="a1", state="busy")
    stream.add("agent.state", 30.0, "voice", agent_id="a3", state="available")
    stream.add("agent.state", 60.0, "voice", agent_id="a3", state="offline")
    stream.add("agent.state", 100.1, "voice", agent_id="a1", state="after_call_work")
    stream.add("agent.state", 150.0, "voice", agent_id="a2", state="break")
    stream.add("agent.state", 200.999, "voice", agent_id="a1", state="available")
    stream.add("agent.state", 250.4, "voice", agent_id="a2", state="busy")
    stream.add("agent.state", 330.0, "voice", agent_id="a2", state="offline")


def test_occupancy_by_hand() -> None:
    s = Stream()
    hand_case(s)
    engine, stats = run(s.lines)
    assert sum(stats.rejected.values()) == 0
    # Clock at T0+330: 5m holds (30, 330], 1h everything since the first second.
    # 5m: a1 busy 30..100.1 = 70.1 s, acw 100.1..200.999 = 100.899 s,
    #     available 200.999..330 = 129.001 s; a2 available 30..150 = 120 s, busy 250.4..330 =
    #     79.6 s; a3 available 30..60 = 30 s (its change sits exactly on the window edge).
    busy, acw, avail = 70.1 + 79.6, 100.899, 129.001 + 120 + 30
    assert get(engine, "support_occupancy_ratio", channel="voice", window="5m") == pytest.approx(
        (busy + acw) / (busy + acw + avail), rel=1e-12
    )
    total = engine.channels["voice"].windows.total("5m")
    assert (total.agent_busy_ms, total.agent_acw_ms, total.agent_available_ms) == (
        149_700,
        100_899,
        279_001,
    )
    # 1h: a1 available 0.25..20.75 = 20.5 s more, busy 20.75..30 = 9.25 s more; a2 available
    # 10.5..30 = 19.5 s more.
    one_h = engine.channels["voice"].windows.total("1h")
    assert (one_h.agent_busy_ms, one_h.agent_acw_ms, one_h.agent_available_ms) == (
        158_950,
        100_899,
        319_001,
    )
    counts = {
        st: get(engine, "support_agents", channel="voice", state=st)
        for st in ("available", "busy", "after_call_work", "break", "offline")
    }
    assert counts == {"available": 1, "busy": 0, "after_call_work": 0, "break": 0, "offline": 2}
    # No agent ever seen on chat/email: no workforce rows there.
    assert all(labels[0] == ("channel", "voice") for _, labels in rows(engine))


def test_occupancy_counts_up_to_a_clock_between_two_seconds() -> None:
    # a1 available from 0, busy from 10; the clock stops at 20.5 (the last event): 10 s
    # available and 10.5 s busy, as the window (20 - 300, 20.5] holds every other count.
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 10.0, "voice", agent_id="a1", state="busy")
    s.add("agent.state", 20.5, "voice", agent_id="a2", state="break")
    engine, _ = run(s.lines)
    assert engine.now == T0 + 20.5
    got = get(engine, "support_occupancy_ratio", channel="voice", window="5m")
    assert got == pytest.approx(10.5 / 20.5, rel=1e-12)


def test_occupancy_nan_without_timed_time() -> None:
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="break")
    s.add("agent.state", 50.0, "voice", agent_id="a1", state="offline")
    engine, _ = run(s.lines, until=100)
    assert math.isnan(get(engine, "support_occupancy_ratio", channel="voice", window="5m"))
    assert get(engine, "support_agents", channel="voice", state="offline") == 1


def random_changes(rng: random.Random, agents: int, span_ms: int) -> list[tuple[int, str, str]]:
    """(ms after T0, agent, state), in time order."""
    states = ("available", "busy", "after_call_work", "break", "offline")
    out = []
    for a in range(agents):
        t = rng.randrange(0, 5000)
        while t < span_ms:
            out.append((t, f"ag{a}", rng.choice(states)))
            t += rng.randrange(5000, 40_000)  # > the 4.9 s shuffle: per-agent order kept
    out.sort()
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_occupancy_matches_interval_model_in_order_and_late(seed: int) -> None:
    """Random state changes at millisecond times; delivered in order, then with each event up
    to 4.9 s late (within the allowed lateness): the buckets equal the interval model's."""
    rng = random.Random(seed)
    span_ms = 900_000
    changes = random_changes(rng, 12, span_ms)
    delivered_late = sorted(changes, key=lambda c: c[0] + rng.randrange(0, 4900))
    model: dict[str, list[tuple[int, str]]] = {}
    for t, agent, state in changes:
        model.setdefault(agent, []).append((t, state))
    end_ms = span_ms + 1000
    for order in (changes, delivered_late):
        s = Stream()
        for t, agent, state in order:
            s.add("agent.state", t / 1000, "voice", agent_id=agent, state=state)
        s.add("contact.queued", end_ms / 1000, "chat", contact_id="clock", queue="sales")
        engine, _ = run(s.lines)
        assert engine.workforce.superseded == 0
        first_ms = min(t for t, _, _ in changes) // 1000 * 1000  # accrual starts at that second
        for window, width in (("5m", 300_000), ("1h", 3_600_000)):
            want = state_ms(model, max(end_ms - width, first_ms), end_ms, end_ms)
            total = engine.channels["voice"].windows.total(window)
            got = {
                "available": total.agent_available_ms,
                "busy": total.agent_busy_ms,
                "after_call_work": total.agent_acw_ms,
            }
            assert got == want, (window, order is changes)
            assert get(engine, "support_occupancy_ratio", channel="voice", window=window) == (
                pytest.approx(occupancy(want), rel=1e-12, nan_ok=True)
            )


def test_late_newest_state_moves_accrued_time() -> None:
    """a1 busy at 20.75 arrives after the clock reached 23.0: (20.75, 23] moves from
    available to busy, as if in order."""
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 23.0, "voice", agent_id="a2", state="break")
    s.add("agent.state", 20.75, "voice", agent_id="a1", state="busy")
    engine, _ = run(s.lines, until=60)
    total = engine.channels["voice"].windows.total("5m")
    # a1: available 0..20.75, busy 20.75..60.
    assert (total.agent_available_ms, total.agent_busy_ms) == (20_750, 39_250)
    assert engine.workforce.superseded == 0


def test_a_change_later_than_every_sliding_window_moves_the_today_time_too() -> None:
    """Windows 5m, 1h and today (day start 00:00 UTC, T0 is 09:00). a1 available at T0, a
    complaint at T0 + 90 min moves the clock, then a1 busy stamped T0 + 10 min arrives: 80
    minutes late, longer than the 1h window. today must hold available 10 min and busy 80
    min, as in ts order; before, only the last hour moved (available 30 min, busy 60 min)."""
    cfg = settings(windows=["5m", "1h", "today"])
    late, in_order = Stream(), Stream()
    late.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    late.add("complaint.received", 5400.0, "voice")
    late.add("agent.state", 600.0, "voice", agent_id="a1", state="busy")
    in_order.lines = [late.lines[0], late.lines[2], late.lines[1]]
    for stream in (late, in_order):
        engine, _ = run(stream.lines, cfg)
        today = engine.channels["voice"].windows.total("today")
        assert (today.agent_available_ms, today.agent_busy_ms) == (600_000, 4_800_000)
        hour = engine.channels["voice"].windows.total("1h")
        assert (hour.agent_available_ms, hour.agent_busy_ms) == (0, 3_600_000)


def test_older_than_the_newest_state_within_the_lateness_is_put_in_ts_order() -> None:
    """available at 10, break at 15, then busy stamped 12 arrives (the watermark is at 10, the
    lateness 5 s): the numbers of the three in ``ts`` order. By hand, clock at 60: available
    10..12 = 2 s, busy 12..15 = 3 s, break from 15 (not timed). Until 2026-12-05 the busy was
    superseded: available 5 s, busy 0."""
    s = Stream()
    s.add("agent.state", 10.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 15.0, "voice", agent_id="a1", state="break")
    s.add("agent.state", 12.0, "voice", agent_id="a1", state="busy")
    engine, stats = run(s.lines, until=60)
    assert engine.workforce.superseded == 0
    assert sum(stats.rejected.values()) == 0
    total = engine.channels["voice"].windows.total("5m")
    assert (total.agent_available_ms, total.agent_busy_ms) == (2_000, 3_000)
    assert get(engine, "support_agents", channel="voice", state="break") == 1
    assert get(engine, "support_agents", channel="voice", state="busy") == 0
    in_order, _ = run(sorted_by_time(s), until=60)
    assert rows(engine) == rows(in_order)
    # a snapshot taken just before the late event (no flush: the watermark stays at 10) keeps
    # what lets it be put in order
    before = Engine(settings())
    pipeline = Pipeline(before, DaemonStats(), event_clock=True, log_burst=0)
    for i, line in enumerate(s.lines[:-1]):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    restored = snapshot.restore(snapshot.capture(before, {}), before.settings)
    Pipeline(restored, DaemonStats(), event_clock=True, log_burst=0).process(
        "test", Delivery(s.lines[-1], "line:3")
    )
    restored.flush(T0 + 60)
    assert restored.workforce.superseded == 0
    assert rows(restored) == rows(engine)


def test_an_agent_keeps_its_last_16_events_for_late_ones() -> None:
    """22 changes of a1 10 ms apart from 10.00 s (available at 10.00, busy at 10.01, ...,
    available at 10.20, busy at 10.21); then busy stamped 10.205 arrives: put in order. Then
    busy stamped 10.005 arrives: older than the 16 events kept (the oldest is 10.06):
    superseded. By hand, clock at 60: available 10 x 10 ms + 5 ms (10.20..10.205) = 105 ms;
    busy 10 x 10 ms + 5 ms + 10.21..60 (49,790 ms) = 49,895 ms."""
    assert MAX_AGENT_LOG == 16
    s = Stream()
    for i in range(22):
        state = "busy" if i % 2 else "available"
        s.add("agent.state", 10 + i / 100, "voice", agent_id="a1", state=state)
    s.add("agent.state", 10.205, "voice", agent_id="a1", state="busy")
    s.add("agent.state", 10.005, "voice", agent_id="a1", state="busy")
    engine, _ = run(s.lines, until=60)
    assert engine.workforce.superseded == 1
    total = engine.channels["voice"].windows.total("5m")
    assert (total.agent_available_ms, total.agent_busy_ms) == (105, 49_895)


def test_older_than_the_newest_state_beyond_the_lateness_is_superseded() -> None:
    """available at 10, break at 30, then busy stamped 12 arrives when the watermark is at 25:
    superseded (applied, no change); the numbers are those of the first two events alone."""
    s = Stream()
    s.add("agent.state", 10.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 30.0, "voice", agent_id="a1", state="break")
    s.add("agent.state", 12.0, "voice", agent_id="a1", state="busy")
    engine, stats = run(s.lines, until=60)
    assert engine.workforce.superseded == 1
    assert sum(stats.rejected.values()) == 0
    assert sum(n for (_, kind), n in stats.events.items() if kind == "agent.state") == 3
    total = engine.channels["voice"].windows.total("5m")
    assert (total.agent_available_ms, total.agent_busy_ms) == (20_000, 0)
    assert get(engine, "support_agents", channel="voice", state="break") == 1
    assert get(engine, "support_agents", channel="voice", state="busy") == 0


@pytest.mark.parametrize("explicit", [False, True])
def test_a_state_older_than_an_answer_that_found_the_agent_busy_is_superseded(
    explicit: bool,
) -> None:
    """a1 is busy from 10 (its first answer, or an agent.state busy), answers c2 at 30 while
    busy, then an ``available`` stamped 20 arrives: superseded by the answer at 30 (busy at 30
    too), so a1 stays busy from 10 on: 30 s busy of the 40 s since its first state at 0. Before,
    the late available was applied over it: a1 available while on c2, occupancy 10/40."""
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    if explicit:
        s.add("agent.state", 10.0, "voice", agent_id="a1", state="busy")
    for contact, at in (("c1", 10.0), ("c2", 30.0)):
        s.add("contact.queued", at, "voice", contact_id=contact, queue="billing")
        s.add("contact.answered", at, "voice", contact_id=contact, queue="billing", agent_id="a1")
    s.add("agent.state", 20.0, "voice", agent_id="a1", state="available")
    engine, stats = run(s.lines, until=40)
    assert sum(stats.rejected.values()) == 0
    assert engine.workforce.superseded == 1
    assert get(engine, "support_agents", channel="voice", state="busy") == 1
    assert get(engine, "support_agents", channel="voice", state="available") == 0
    total = engine.channels["voice"].windows.total("5m")
    assert (total.agent_available_ms, total.agent_busy_ms) == (10_000, 30_000)
    # the same with a snapshot taken before the late available: the answer's time is kept
    assert rows(_last_line_after_a_snapshot(s.lines, 35, 40)) == rows(engine)


def test_answered_implies_busy_and_ended_returns_available() -> None:
    s = Stream()
    s.add("contact.queued", 0.0, "voice", contact_id="c1", queue="billing")
    s.add("contact.answered", 5.0, "voice", contact_id="c1", queue="billing", agent_id="a1")
    s.add("contact.ended", 65.0, "voice", contact_id="c1", queue="billing")
    # a2: available, answers at 10 (busy), sends after_call_work at 40 itself: the end at 70
    # does not make it available (an agent.state came in between).
    s.add("agent.state", 0.0, "voice", agent_id="a2", state="available")
    s.add("contact.queued", 9.0, "voice", contact_id="c2", queue="tech")
    s.add("contact.answered", 10.0, "voice", contact_id="c2", queue="tech", agent_id="a2")
    s.add("agent.state", 40.0, "voice", agent_id="a2", state="after_call_work")
    s.add("contact.ended", 70.0, "voice", contact_id="c2", queue="tech")
    engine, _ = run(sorted_by_time(s), until=100)
    total = engine.channels["voice"].windows.total("5m")
    # a1 (created at the answer): busy 5..65 = 60 s, available 65..100 = 35 s.
    # a2: available 0..10 = 10 s, busy 10..40 = 30 s, acw 40..100 = 60 s.
    assert (total.agent_available_ms, total.agent_busy_ms, total.agent_acw_ms) == (
        45_000,
        90_000,
        60_000,
    )
    assert get(engine, "support_agents", channel="voice", state="available") == 1
    assert get(engine, "support_agents", channel="voice", state="after_call_work") == 1
    rows_ = engine.workforce.agent_rows(engine.now)
    assert [(r["agent_id"], r["state"], r["contacts_handled"]) for r in rows_] == [
        ("a1", "available", 1),
        ("a2", "after_call_work", 1),
    ]
    assert rows_[0]["seconds_in_state"] == pytest.approx(35.0)
    # Handle time: talk 60 s + 60 s, plus 60 s of after-call work, over 2 ended contacts.
    assert engine.workforce.handle_time("voice") == pytest.approx(90.0)


def test_two_chats_return_available_after_both_end() -> None:
    s = Stream()
    for cid, q_at, a_at in (("c1", 0.0, 1.0), ("c2", 2.0, 3.0)):
        s.add("contact.queued", q_at, "chat", contact_id=cid, queue="sales")
        s.add("contact.answered", a_at, "chat", contact_id=cid, queue="sales", agent_id="x")
    s.add("contact.ended", 20.0, "chat", contact_id="c1", queue="sales")
    s.add("contact.ended", 30.0, "chat", contact_id="c2", queue="sales")
    engine, _ = run(sorted_by_time(s), until=50)
    total = engine.channels["chat"].windows.total("5m")
    assert (total.agent_busy_ms, total.agent_available_ms) == (29_000, 20_000)


def test_a_chat_answered_before_an_agent_state_does_not_end_the_next_ones() -> None:
    """x answers c1 at 10, says available at 20 and answers c2 at 30; c1 ends at 60. c1 was
    answered before the agent.state, so its end leaves x busy on c2 (until c2 ends at 90).
    Before: x went available at 60 (busy 10..20 and 30..60 only)."""
    s = Stream()
    s.add("agent.state", 0.0, "chat", agent_id="x", state="available")
    s.add("contact.queued", 5.0, "chat", contact_id="c1", queue="sales")
    s.add("contact.answered", 10.0, "chat", contact_id="c1", queue="sales", agent_id="x")
    s.add("agent.state", 20.0, "chat", agent_id="x", state="available")
    s.add("contact.queued", 25.0, "chat", contact_id="c2", queue="sales")
    s.add("contact.answered", 30.0, "chat", contact_id="c2", queue="sales", agent_id="x")
    s.add("contact.ended", 60.0, "chat", contact_id="c1", queue="sales")
    engine, _ = run(s.lines, until=80)
    assert get(engine, "support_agents", channel="chat", state="busy") == 1
    total = engine.channels["chat"].windows.total("5m")
    # available 0..10 and 20..30 = 20 s; busy 10..20 and 30..80 = 60 s
    assert (total.agent_available_ms, total.agent_busy_ms) == (20_000, 60_000)
    # The same from a snapshot taken before c1 ends: c1 still does not end the busy state.
    assert rows(_last_line_after_a_snapshot(s.lines, 40, 80)) == rows(engine)
    s.add("contact.ended", 90.0, "chat", contact_id="c2", queue="sales")
    engine, _ = run(s.lines, until=100)
    assert get(engine, "support_agents", channel="chat", state="available") == 1


def test_unknown_queue_is_rejected_and_every_staffed_agent_counts_for_each_queue() -> None:
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available", queues=["nope"])
    s.add("agent.state", 0.0, "voice", agent_id="a2", state="available", queues=["billing"])
    s.add("agent.state", 0.0, "voice", agent_id="a3", state="busy")
    s.add("agent.state", 0.0, "voice", agent_id="a4", state="break", queues=["tech"])
    s.add("agent.state", 0.0, "nowhere", agent_id="a5", state="available")
    # the envelope's queue must be declared too (it was not read: audit of 2026-12-04)
    s.add("agent.state", 0.0, "voice", agent_id="a6", state="available", queue="nope")
    engine, stats = run(s.lines, until=10)
    assert {r: n for (_, r), n in stats.rejected.items() if n} == {
        "unknown_queue": 2,
        "unknown_channel": 1,
    }
    # N is "the agents currently available or busy on the queue's channel": a2 and a3, for
    # billing and tech alike (a2 lists billing only; a4 is on break)
    assert engine.workforce.agents_on("voice") == 2


def test_estimated_wait_counts_the_channels_agents_whatever_queues_they_list() -> None:
    # a1 lists billing, a2 tech; billing: 2 contacts in the 5 m window, handle 225 s each
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available", queues=["billing"])
    s.add("agent.state", 0.0, "voice", agent_id="a2", state="available", queues=["tech"])
    for cid, at in (("c1", 10.0), ("c2", 20.0)):
        s.add("contact.queued", at, "voice", queue="billing", contact_id=cid)
        s.add("contact.answered", at, "voice", contact_id=cid)
    s.add("contact.ended", 235.0, "voice", contact_id="c1")
    s.add("contact.ended", 245.0, "voice", contact_id="c2")
    engine, _ = run(sorted_by_time(s), until=300)
    # lambda = 2/300 /s, AHT 225 s: A = 1.5 Erlangs on N = 2 agents (before: 1, so +Inf).
    # Erlang C: A^2/2! * N/(N-A) = 4.5; C = 4.5 / (1 + 1.5 + 4.5) = 9/14;
    # wait = C * AHT / (N - A) = 9/14 * 225 / 0.5 = 289.2857...
    staffing = engine.workforce.staffing("voice", "billing")
    assert staffing is not None
    assert staffing.wait_seconds == pytest.approx(9 / 14 * 225 / 0.5, rel=1e-9)


def sorted_by_time(s: Stream) -> list[bytes]:
    """The stream's lines in event-time order (stable)."""
    return sorted(s.lines, key=lambda line: json.loads(line)["ts"])


def test_workforce_interface_kept() -> None:
    for name in ("apply", "contact_answered", "contact_ended", "accrue", "export", "restore"):
        assert callable(getattr(Workforce, name))


def test_explicitly_busy_agent_is_not_freed_by_an_end() -> None:
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="busy")
    s.add("contact.queued", 1.0, "voice", contact_id="c1", queue="billing")
    s.add("contact.answered", 5.0, "voice", contact_id="c1", queue="billing", agent_id="a1")
    s.add("contact.ended", 20.0, "voice", contact_id="c1", queue="billing")
    engine, _ = run(s.lines, until=30)
    assert get(engine, "support_agents", channel="voice", state="busy") == 1
    assert engine.channels["voice"].windows.total("5m").agent_busy_ms == 30_000
    assert engine.workforce.agent_rows(engine.now)[0]["contacts_handled"] == 1
