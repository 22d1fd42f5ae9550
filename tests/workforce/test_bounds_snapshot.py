"""The agent bound, 100,000 distinct agent ids, forgetting offline agents, snapshot round trip."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import Reject, decode
from tests.support import T0, Stream, iso, run
from tests.support import settings as config
from tests.workforce.helpers import rows
from tests.workforce.streams import CFG, Case, Sent, event_lines, last_ms, streams


def agent_event(n: int, at: float, state: str = "available", channel: str = "voice") -> bytes:
    return json.dumps(
        {
            "event_id": f"e{n}",
            "type": "agent.state",
            "ts": iso(T0 + at),
            "channel": channel,
            "agent_id": f"agent-{n:06d}",
            "state": state,
        }
    ).encode()


def test_hundred_thousand_agent_ids_stay_bounded() -> None:
    engine = Engine(config())  # limits.max_agents: 20,000 (default)
    events = [decode(agent_event(n, 1.0 + n / 1e5), 65536) for n in range(100_000)]
    engine.advance(T0 + 1)
    tracemalloc.start()
    reasons = [engine.apply(ev, ev.ts.timestamp()) for ev in events[:20_000]]
    at_bound, _ = tracemalloc.get_traced_memory()
    reasons += [engine.apply(ev, ev.ts.timestamp()) for ev in events[20_000:]]
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert reasons.count(None) == 20_000
    assert reasons.count(Reject.CAPACITY) == 80_000
    assert len(engine.workforce.agents) == 20_000
    assert engine.capacity_exhausted["agents"] == 80_000
    # The 80,000 refused ids leave nothing behind (the list of reasons itself grows by 80,000
    # pointers, 640 kB).
    assert after - at_bound < 1_000_000, after - at_bound
    assert at_bound / 20_000 < 600  # bytes per tracked agent (docs/workforce.md says ~400)


def test_offline_agents_are_forgotten_first() -> None:
    cfg = config(limits={"max_agents": 3, "agent_retention": 60})
    s = Stream()
    for n in range(3):
        s.add("agent.state", 0.0, "voice", agent_id=f"a{n}", state="offline")
    s.add("agent.state", 30.0, "voice", agent_id="late", state="available")  # refused: 3 offline
    s.add("agent.state", 59.0, "voice", agent_id="a0", state="available")  # back: kept
    s.add("agent.state", 61.5, "voice", agent_id="new", state="available")  # a1, a2 forgotten
    engine, stats = run(s.lines, cfg)
    assert {r: n for (_, r), n in stats.rejected.items() if n} == {"capacity": 1}
    assert engine.capacity_exhausted["agents"] == 1
    assert sorted(k[1] for k in engine.workforce.agents) == ["a0", "new"]
    assert engine.workforce.counts("voice")["offline"] == 0


def feed(engine: Engine, lines: list[bytes]) -> None:
    for line in lines:
        ev = decode(line, 65536)
        ts = ev.ts.timestamp()
        engine.advance(ts)
        engine.apply(ev, ts)


def test_snapshot_round_trip_gives_identical_readout() -> None:
    first, second = Stream(), Stream()
    for n in range(6):
        first.add("agent.state", n * 0.37, "voice", agent_id=f"a{n}", state="available")
    first.add("contact.queued", 3.0, "voice", contact_id="c1", queue="billing")
    first.add("contact.answered", 4.2, "voice", contact_id="c1", queue="billing", agent_id="a1")
    first.add("agent.state", 7.5, "voice", agent_id="a2", state="after_call_work")
    first.add("agent.state", 8.25, "voice", agent_id="a3", state="offline")
    second.add("contact.ended", 30.4, "voice", contact_id="c1", queue="billing")
    second.add("agent.state", 31.0, "voice", agent_id="a4", state="break")
    second.add("agent.state", 29.9, "voice", agent_id="a5", state="busy")  # late: retro-move
    second.add("contact.queued", 40.0, "voice", contact_id="c2", queue="tech")
    cfg = config()
    engine = Engine(cfg)
    feed(engine, first.lines)
    # A change still scheduled in the current second is part of the state: stop mid-second.
    engine.advance(T0 + 9.5)
    feed(engine, [agent_event(99, 9.75, "busy")])
    data = snapshot.encode(snapshot.capture(engine, {}))
    restored = snapshot.restore(snapshot.decode(data), cfg)
    # The snapshot carries the workforce and who answered each talking contact (c1's end
    # below frees a1 in both engines).
    assert {cid: c.agent_id for cid, c in restored.contacts.items()} == {
        cid: c.agent_id for cid, c in engine.contacts.items()
    }
    assert rows(restored) == rows(engine)
    for e in (engine, restored):
        feed(e, second.lines)
        e.advance(T0 + 120)
    assert rows(restored) == rows(engine)
    assert restored.workforce.agent_rows(restored.now) == engine.workforce.agent_rows(engine.now)
    total = engine.channels["voice"].windows.total("5m")
    assert total.agent_busy_ms > 0
    assert total.agent_acw_ms > 0


def test_restore_without_workforce_state_leaves_it_empty() -> None:
    engine = Engine(config())
    engine.workforce.restore(None)
    assert rows(engine) == {}
    assert engine.workforce.agents == {}


def _snapshot_with_a_log() -> tuple[bytes, snapshot.Snapshot]:
    """a1 available at 10, busy at 12 (both within the lateness at the capture): a1 keeps both
    events (and its state before them: none) to put a late one in order."""
    engine = Engine(config())
    s = Stream()
    s.add("agent.state", 10.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 12.0, "voice", agent_id="a1", state="busy")
    feed(engine, s.lines)
    captured = snapshot.capture(engine, {})
    return snapshot.encode(captured), captured


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ((3, 0, 2), 7),  # a state index beyond the five states
        ((3, 0, 2), -1),  # a negative one would count from the end
        ((3, 1, 1), 9),  # an unknown event kind
        ((3, 0, 0), T0 + 13.0),  # the first event stamped after the second
        ((3, 0, 1), 2),  # a log that, with no state before it, starts with an end
    ],
)
def test_a_damaged_agent_log_in_a_snapshot_is_refused(
    where: tuple[int, int, int], value: object
) -> None:
    data, captured = _snapshot_with_a_log()
    row = captured.engine.workforce["agents"][0]
    assert row[11][3] == [[T0 + 10.0, 0, 0, None, 0.0], [T0 + 12.0, 0, 1, None, 0.0]]
    snapshot.from_bytes(data, config())  # the undamaged one restores
    field, entry, part = where
    row[11][field][entry][part] = value
    with pytest.raises(snapshot.SnapshotError, match="inconsistent state"):
        snapshot.from_bytes(snapshot.encode(captured), config())


def _agent_state(ms: int, arrival: int, state: str) -> Sent:
    fields = {"type": "agent.state", "channel": "voice", "agent_id": "a1", "state": state}
    return Sent(ms, arrival, arrival, fields)


# a1 available at 10 s, break at 15 s, snapshot, then busy stamped 12 s: put between them
LATE_AFTER_THE_SNAPSHOT = Case(
    [
        _agent_state(10_000, 10_000, "available"),
        _agent_state(15_000, 15_000, "break"),
        _agent_state(12_000, 15_001, "busy"),
    ],
    [],
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=streams(), cut=st.floats(0, 1))
@example(case=LATE_AFTER_THE_SNAPSHOT, cut=0.75)
def test_a_snapshot_anywhere_in_a_stream_changes_no_workforce_number(
    case: Case, cut: float
) -> None:
    """Random agent and contact streams delivered out of order within the lateness (late agent
    events are put in ``ts`` order from what each agent keeps): an engine snapshotted after any
    line and restored gives the same rows, agent rows and agent time as the one that never
    stopped."""
    lines = event_lines(case)
    at = round(cut * len(lines))
    whole, parts = Engine(parse_settings(CFG)), Engine(parse_settings(CFG))
    feed(whole, lines)
    feed(parts, lines[:at])
    restored, _, _ = snapshot.from_bytes(
        snapshot.encode(snapshot.capture(parts, {})), parts.settings
    )
    feed(restored, lines[at:])
    end = T0 + last_ms(case) / 1000
    for engine in (whole, restored):
        engine.flush(end)
    assert restored.workforce.superseded == whole.workforce.superseded
    assert rows(restored) == rows(whole)
    assert restored.workforce.agent_rows(end) == whole.workforce.agent_rows(end)
    for channel in CFG["channels"]:
        for window in ("1m", "5m", "today"):
            a = restored.channels[channel].windows.total(window)
            b = whole.channels[channel].windows.total(window)
            assert (a.agent_available_ms, a.agent_busy_ms, a.agent_acw_ms) == (
                b.agent_available_ms,
                b.agent_busy_ms,
                b.agent_acw_ms,
            ), (channel, window)
