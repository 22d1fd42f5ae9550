"""Erlang C per queue: agents required and estimated wait on a hand-made case."""

from __future__ import annotations

import json
import math

import pytest

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.events import decode
from tests.support import CONFIG, T0, Stream, run, settings
from tests.workforce.helpers import get, required, rows, wait


def staffing_case(agents: int) -> Stream:
    """100 contacts queued on voice/billing in 10..257.5 s; the first 10 are answered at once
    and end 180 s later (mean handle time 180 s, no after-call work); ``agents`` agents serve
    billing only, available from 1 s."""
    s = Stream()
    events: list[tuple[float, str, dict[str, object]]] = [
        (1.0, "agent.state", {"agent_id": f"ag{a}", "state": "available", "queues": ["billing"]})
        for a in range(agents)
    ]
    for i in range(100):
        at = 10 + 2.5 * i
        events.append((at, "contact.queued", {"contact_id": f"c{i}", "queue": "billing"}))
        if i < 10:
            answer: dict[str, object] = {"contact_id": f"c{i}", "queue": "billing"}
            answer["agent_id"] = f"ag{i}"
            events.append((at, "contact.answered", answer))
            events.append((at + 180, "contact.ended", {"contact_id": f"c{i}", "queue": "billing"}))
    for at, kind, fields in sorted(events, key=lambda e: e[0]):  # stable: in-second order kept
        s.add(kind, at, "voice", **fields)
    return s


def test_agents_required_and_wait_by_hand() -> None:
    engine, _ = run(staffing_case(65).lines, until=300)
    # Shortest window 5m = (0, 300]: 100 arrivals / 300 s, AHT 180 s -> A = 60 Erlangs.
    # T = 20 s, target 0.8 (voice). The independent model (log-space Erlang C sum):
    traffic = 100 / 300 * 180
    assert traffic == pytest.approx(60.0)
    need = required(traffic, 180.0, 20.0, 0.8)
    # SL(65) = 0.7590, SL(66) = 0.8226: the fewest N with 1 - C(N, A) e^{-(N-A) T/AHT} >= 0.8
    assert need == 66
    got = get(engine, "support_agents_required", channel="voice", queue="billing")
    assert got == need
    ewt = get(engine, "support_estimated_wait_seconds", channel="voice", queue="billing")
    assert ewt == pytest.approx(wait(65, traffic, 180.0), rel=1e-9)
    assert ewt == pytest.approx(15.1226, abs=1e-4)  # C(65, 60) = 0.42007 x 180 s / 5
    # tech: no arrivals -> nothing to staff, no wait; its agents are none (all serve billing).
    assert get(engine, "support_agents_required", channel="voice", queue="tech") == 0
    assert get(engine, "support_estimated_wait_seconds", channel="voice", queue="tech") == 0
    # chat/email saw no agent: no rows; email has no answer_seconds in any case.
    assert {labels[0][1] for _, labels in rows(engine)} == {"voice"}


def test_agents_who_work_two_contacts_at_once_halve_the_load() -> None:
    """``agent_concurrency: 2``, here by a reload of the case above (whose 66 agents were
    cached: a reload clears that cache): an agent is one server finishing each contact in
    AHT / 2, so the same inputs offer 100 / 300 x 180 / 2 = 30 agent-Erlangs."""
    engine, _ = run(staffing_case(65).lines, until=300)
    assert get(engine, "support_agents_required", channel="voice", queue="billing") == 66
    channels = json.loads(json.dumps(CONFIG["channels"]))
    channels["voice"]["agent_concurrency"] = 2
    engine.reconfigure(settings(channels=channels))
    traffic = 100 / 300 * 180 / 2
    need = required(traffic, 90.0, 20.0, 0.8)
    # SL(33) = 0.7482, SL(34) = 0.8453 with A = 30, AHT 90 s, T = 20 s (the independent
    # log-space sum)
    assert need == 34
    assert get(engine, "support_agents_required", channel="voice", queue="billing") == need
    ewt = get(engine, "support_estimated_wait_seconds", channel="voice", queue="billing")
    assert ewt == pytest.approx(wait(65, traffic, 90.0), rel=1e-9)
    assert ewt == pytest.approx(5.5813e-8, rel=1e-4)  # C(65, 30) = 2.1705e-8 x 90 s / 35


def test_wait_is_inf_when_arrivals_exceed_capacity() -> None:
    engine, _ = run(staffing_case(40).lines, until=300)
    assert get(engine, "support_estimated_wait_seconds", channel="voice", queue="billing") == (
        math.inf
    )
    assert get(engine, "support_agents_required", channel="voice", queue="billing") == 66


def test_arrivals_slide_with_the_shortest_window() -> None:
    """At 400 s the 5m window is (100, 400]: arrivals 10 + 2.5 i > 100 -> i >= 37: 63 left;
    ended contacts (all by 212.5 s) are still in 5m, so AHT stays 180 s."""
    engine, _ = run(staffing_case(65).lines, until=400)
    assert engine.workforce.arrivals("voice", "billing") == 63
    assert engine.channels["voice"].windows.total("5m").queued == 63
    traffic = 63 / 300 * 180
    got = get(engine, "support_agents_required", channel="voice", queue="billing")
    assert got == required(traffic, 180.0, 20.0, 0.8)


def test_arrivals_slide_after_a_restore_and_a_jump() -> None:
    """The restored arrival buckets slide out as the live ones do: one second at a time, and
    across a jump of the clock (every bucket at once)."""
    engine, _ = run(staffing_case(65).lines, until=300)
    data = snapshot.encode(snapshot.capture(engine, {}))
    restored = snapshot.restore(snapshot.decode(data), engine.settings)
    for e in (engine, restored):
        e.advance(T0 + 400)  # 5m = (100, 400]: 10 + 2.5 i > 100 -> 63 left, as above
        assert e.workforce.arrivals("voice", "billing") == 63
        e.advance(T0 + 401)  # (101, 401]: i = 37 (at 102.5 s) is still in
        assert e.workforce.arrivals("voice", "billing") == 63
        e.advance(T0 + 403)  # (103, 403]: i = 37 is out
        assert e.workforce.arrivals("voice", "billing") == 62
        e.advance(T0 + 5000)  # a jump past every arrival
        assert e.workforce.arrivals("voice", "billing") == 0


def test_handle_time_falls_back_to_longer_window_then_nan() -> None:
    engine, _ = run(staffing_case(65).lines, until=600)
    # 5m = (300, 600] has no ended contact; 1h has the 10 of 180 s.
    assert engine.workforce.handle_time("voice") == pytest.approx(180.0)
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a", state="available")
    s.add("contact.queued", 1.0, "voice", contact_id="c", queue="billing")
    engine, _ = run(s.lines, until=10)
    assert math.isnan(engine.workforce.handle_time("voice"))
    assert math.isnan(get(engine, "support_agents_required", channel="voice", queue="billing"))


def test_staffing_cache_follows_inputs() -> None:
    engine, _ = run(staffing_case(65).lines, until=300)
    wf = engine.workforce
    first = wf.staffing("voice", "billing")
    assert wf.staffing("voice", "billing") is first  # same inputs: cached
    ev = decode(
        b'{"event_id":"x","type":"agent.state","ts":"2026-03-02T09:05:00+00:00",'
        b'"channel":"voice","agent_id":"ag0","state":"break"}',
        65536,
    )
    assert engine.apply(ev, ev.ts.timestamp()) is None
    second = wf.staffing("voice", "billing")
    assert second is not first
    assert second is not None
    assert second.wait_seconds == pytest.approx(wait(64, 60.0, 180.0), rel=1e-9)


def test_arrivals_with_no_agent_available_or_busy_wait_forever_before_any_handle_time() -> None:
    # One agent on break (none available or busy) and a contact queued, none handled yet:
    # arrivals exceed a capacity of 0 agents, so the estimated wait is +Inf (it was NaN: the
    # handle time is unknown, but no handle time makes 0 agents keep up; audit of 2026-12-05).
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a", state="break", queues=["billing"])
    s.add("contact.queued", 1.0, "voice", contact_id="c", queue="billing")
    engine, _ = run(s.lines, until=10)
    assert get(engine, "support_estimated_wait_seconds", channel="voice", queue="billing") == (
        math.inf
    )
    assert math.isnan(get(engine, "support_agents_required", channel="voice", queue="billing"))
    # an agent available: the wait depends on the handle time, still unknown
    s.add("agent.state", 2.0, "voice", agent_id="b", state="available", queues=["billing"])
    engine, _ = run(s.lines, until=10)
    wait_now = get(engine, "support_estimated_wait_seconds", channel="voice", queue="billing")
    assert math.isnan(wait_now)
