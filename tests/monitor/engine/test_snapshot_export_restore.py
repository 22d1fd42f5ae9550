"""The public export/restore pairs the snapshot codec is built on (``Engine.export_state``,
``SlidingWindows.export``, ``Deduplicator.export`` and their ``restore``): a snapshot of a
restored engine equals the snapshot it was restored from, and what each part exports is what
the events put there (worked out by hand below)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from xxhash import xxh3_64_intdigest

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.dedup import Deduplicator
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.windows import Agg, SlidingWindows
from tests.monitor.engine.snapshot_streams import LONG_CFG, feed, random_stream
from tests.support import T0, iso

SEED = 0x5EED


def _bytes(engine: Engine, cut: int) -> bytes:
    snap = snapshot.capture(engine, {("events", 0): cut})
    snap.created_at = 0.0  # the one wall-clock field
    return snapshot.encode(snap)


@pytest.mark.parametrize("seed", [1, 5, 11])
def test_capture_of_a_restored_engine_equals_the_capture_it_came_from(seed: int) -> None:
    cfg = parse_settings(LONG_CFG)
    engine = Engine(cfg)
    engine.dedup.seed = SEED
    lines = random_stream(seed, 4000)
    start = 0
    held_seen = 0
    for cut in (300, 1700, 4000):
        feed(engine, lines[start:cut])
        start = cut
        held_seen += engine.early_outcomes_held
        first = _bytes(engine, cut)
        restored, offsets, _ = snapshot.from_bytes(first, cfg)
        assert offsets == {("events", 0): cut}
        second = _bytes(restored, cut)
        # Equal as values. Not byte for byte: whole-second floats the engine computes as ints
        # (window cuts, next second) are stored as msgpack ints and come back as floats.
        assert snapshot.decode(second) == snapshot.decode(first)
        again, _, _ = snapshot.from_bytes(second, cfg)
        assert _bytes(again, cut) == second  # from there on, byte for byte
        assert restored.export_state() == engine.export_state()
        for name, ch in engine.channels.items():
            assert restored.channels[name].windows.export() == ch.windows.export()
        assert restored.dedup.export() == engine.dedup.export()
    if seed == 1:
        assert held_seen > 0  # the stream does hold early outcomes at some cut


def _line(i: int, at: float, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": f"e{i}", "ts": iso(T0 + at), "type": kind, **fields}).encode()


STREAM = [
    _line(0, 0.5, "contact.queued", channel="voice", queue="billing", contact_id="c1"),
    _line(1, 1.2, "contact.answered", channel="voice", contact_id="c1"),
    _line(2, 2.0, "ticket.created", channel="email", queue="default", ticket_id="t1", tags=[]),
    _line(3, 3.0, "ticket.solved", channel="email", ticket_id="t1"),
    _line(4, 3.5, "contact.answered", channel="voice", contact_id="c9"),  # before its queued
    _line(0, 0.5, "contact.queued", channel="voice", queue="billing", contact_id="c1"),  # again
]


def _ints(agg: Agg) -> dict[str, int]:
    return {name: getattr(agg, name) for name in Agg.INTS if getattr(agg, name)}


def test_exported_parts_hold_what_the_events_put_there() -> None:
    cfg = parse_settings(LONG_CFG)
    engine = Engine(cfg)
    engine.dedup.seed = SEED
    feed(engine, STREAM)
    t0 = int(T0)
    assert t0 == T0

    own = engine.export_state()
    assert own.next_second == t0 + 4  # clock at T0 + 3.5
    assert own.talking == ["c1"]
    assert own.solved == []  # the solve waits for the watermark (lateness 5 s) to pass it
    assert own.early_seq == 2
    [(solve_key, solve), (key, (ts, seq, event, token))] = own.early
    assert (solve_key, solve[0], solve[1], solve[2].event_id) == ((True, "t1"), T0 + 3.0, 0, "e3")
    assert solve[3] == (STREAM[3], "line:3", "test")
    assert (key, ts, seq) == ((False, "c9"), T0 + 3.5, 1)
    assert event.event_id == "e4"
    assert token == (STREAM[4], "line:4", "test")

    # The last slide was at T0 + 3 (the edge): cuts are edge - 60, - 300, - 3600.
    voice = engine.channels["voice"].windows.export()
    assert voice.cuts == [t0 + 3 - 60, t0 + 3 - 300, t0 + 3 - 3600]
    # queued at 0.5 -> bucket ceil = T0 + 1; answered at 1.2 after 0.7 s -> bucket T0 + 2
    assert [(k - t0, _ints(a)) for k, a in voice.buckets] == [
        (1, {"queued": 1}),
        (2, {"answered": 1, "answered_in_sla": 1, "wait_ms": 700}),
    ]
    every = {"queued": 1, "answered": 1, "answered_in_sla": 1, "wait_ms": 700}
    assert [_ints(a) for a in voice.totals] == [every, every, every]
    email = engine.channels["email"].windows.export()
    assert [(k - t0, _ints(a)) for k, a in email.buckets] == [
        (2, {"created": 1}),  # not solved yet: the solve is held
    ]

    # Ids by whole second of their ts; the held e4 is remembered, the redelivered e0 once.
    dedup = engine.dedup.export()
    h = [xxh3_64_intdigest(f"e{i}".encode(), SEED) for i in range(5)]
    assert dedup.seed == SEED
    assert dedup.current_second == t0 + 3
    assert dedup.buckets == [(t0, [h[0]]), (t0 + 1, [h[1]]), (t0 + 2, [h[2]]), (t0 + 3, h[3:])]
    assert dedup.forgotten == []

    stored = snapshot.capture(engine, {}).engine
    assert stored.talking == ["c1"]
    assert stored.solved == []
    [stored_solve, (is_ticket, item_id, held_ts, held_seq, event_json, stored_token)] = stored.early
    assert stored_solve[:4] == (True, "t1", T0 + 3.0, 0)
    assert (is_ticket, item_id, held_ts, held_seq) == (False, "c9", T0 + 3.5, 1)
    assert json.loads(event_json)["event_id"] == "e4"  # the decoded event, encoded again
    assert stored_token == (STREAM[4], "line:4", "test")
    assert stored.dedup.buckets == dedup.buckets

    # The restored engine holds the same parts: its held outcome is released by the
    # contact's queued event, and its held solve by the watermark passing it (clock at 9 s),
    # exactly as in the engine that never stopped.
    restored, _, _ = snapshot.from_bytes(snapshot.encode(snapshot.capture(engine, {})), cfg)
    assert restored.export_state() == own
    assert restored.early_outcomes_held == 2
    late = _line(5, 4.0, "contact.queued", channel="voice", queue="billing", contact_id="c9")
    later = _line(6, 9.0, "complaint.received", channel="voice")
    for e in (engine, restored):
        feed(e, [late])
        assert e.early_outcomes_held == 1
        assert e.export_state().talking == ["c1", "c9"]
        feed(e, [later])
        assert e.early_outcomes_held == 0
        assert e.export_state().solved == ["t1"]
        assert e.export_state().early == []
        email = e.channels["email"].windows.export()
        assert [(k - t0, _ints(a)) for k, a in email.buckets] == [
            (2, {"created": 1}),
            (3, {"solved": 1, "solved_first_contact": 1}),  # no response, never reopened
        ]
    assert _bytes(restored, 0) == _bytes(engine, 0)


def test_dedup_export_keeps_forgotten_ids_forgotten() -> None:
    d = Deduplicator(max_ids=3, horizon=100, seed=7)
    for event_id, ts in (("a", 10.0), ("b", 10.9), ("c", 11.0)):
        d.add(event_id, ts)
    d.forget("b")
    d.add("d", 12.0)  # 3 ids remembered (a, c, d): nothing evicted
    h = {x: xxh3_64_intdigest(x.encode(), 7) for x in "abcde"}
    state = d.export()
    assert state.buckets == [(10, [h["a"], h["b"]]), (11, [h["c"]]), (12, [h["d"]])]
    assert state.forgotten == [h["b"]]
    assert state.current_second == 12

    copy = Deduplicator(max_ids=3, horizon=100)
    copy.restore(state)
    assert copy.seed == 7
    assert len(copy) == 3
    assert [copy.seen(x) for x in "abcd"] == [True, False, True, True]
    copy.add("e", 12.5)  # a 4th id: the oldest bucket (a, b) goes
    assert [copy.seen(x) for x in "acde"] == [False, True, True, True]
    assert copy.export().buckets == [(11, [h["c"]]), (12, [h["d"], h["e"]])]


def test_windows_restore_continues_sliding() -> None:
    w = SlidingWindows({"1m": 60.0, "5m": 300.0})
    for target in w.targets(5.5):  # bucket 6, both windows
        target.queued += 1
    w.advance(6.0)  # edge 6: cuts 6 - 60, 6 - 300
    state = w.export()
    assert state.cuts == [-54, -294]
    assert [(k, a.queued) for k, a in state.buckets] == [(6, 1)]

    copy = SlidingWindows({"1m": 60.0, "5m": 300.0})
    copy.restore(state)
    assert copy.export() == state
    for target in copy.targets(6.2):  # bucket 7, both windows
        target.queued += 1
    copy.advance(66.0)  # edge 66: 1m cut 6 drops bucket 6, 5m still holds both
    assert [t.queued for t in copy.totals] == [1, 2]
    copy.advance(367.0)  # edge 367: every bucket slid out of both windows, none kept
    assert [t.queued for t in copy.totals] == [0, 0]
    assert copy.export().buckets == []

    with pytest.raises(ValueError, match="window count"):
        SlidingWindows({"1m": 60.0}).restore(state)
    assert math.isinf(SlidingWindows({"1m": 60.0}).export().cuts[0])
