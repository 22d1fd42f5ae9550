"""Compacting the timer heap (dropping the entries that can never take effect) changes nothing:
an engine that compacts after every event gives the same rows, tick by tick, as one that does it
a few entries at a time (as every decision does), on a random mix of live contacts and tickets
with business hours, priorities, pauses, next replies and reopens. The heap itself pops what a
plain heap would, whatever its clean-up is doing."""

from __future__ import annotations

import heapq
import json
import math
import random
from typing import Any

import pytest

from support_monitor.monitor.engine import timers
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.engine.timers import TimerHeap
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.helpdesk.tickets import TICKET_MOVES, move_fields
from tests.support import CONFIG, T0, iso, settings

WEEKDAYS = {day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def _engine() -> tuple[Engine, Pipeline]:
    channels = json.loads(json.dumps(CONFIG["channels"]))
    channels["email"] = {
        "queues": ["default"],
        "first_response_seconds": 1800,
        "next_reply_seconds": 3600,
        "resolution_seconds": 4 * 3600,
        "priorities": {"urgent": {"first_response": "10m", "resolution": "1h"}},
        "calendar": "office",
    }
    calendar = {"timezone": "Europe/Berlin", "hours": WEEKDAYS, "holidays": []}
    engine = Engine(settings(channels=channels, calendars={"office": calendar}))
    return engine, Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)


def _events(rng: random.Random, count: int) -> list[bytes]:
    out: list[bytes] = []
    now = 0.0
    contacts: list[str] = []
    tickets: list[str] = []
    for n in range(count):
        now += rng.expovariate(1 / 8)
        roll = rng.random()
        # a third of the contacts queue 3-4.9 s late (allowed lateness 5 s): out of order,
        # each on its own answer timer
        late = rng.uniform(3.0, 4.9) if roll < 0.1 else 0.0
        event: dict[str, Any] = {"event_id": f"e{n}", "ts": iso(T0 + now - late)}
        if roll < 0.3:
            cid = f"c{n}" if rng.random() < 0.6 or not contacts else rng.choice(contacts)
            contacts.append(cid)
            kind = (
                "contact.queued"
                if cid == f"c{n}"
                else rng.choice(("contact.answered", "contact.abandoned", "contact.ended"))
            )
            queue = rng.choice(("billing", "tech"))
            event |= {"type": kind, "channel": "voice", "queue": queue, "contact_id": cid}
        elif roll < 0.45 or not tickets:
            tickets.append(f"t{n}")
            priority = rng.choice(("normal", "normal", "urgent", "low"))
            event |= {"type": "ticket.created", "ticket_id": f"t{n}", "priority": priority}
        else:
            kind = rng.choice(TICKET_MOVES)
            event |= {"type": kind, "ticket_id": rng.choice(tickets), **move_fields(rng, kind)}
        event.setdefault("channel", "email")
        out.append(json.dumps(event).encode())
    return out


def _rows(engine: Engine) -> list[tuple[str, Any, float | str]]:
    return [(r.name, r.labels, "nan" if math.isnan(r.value) else r.value) for r in series(engine)]


def test_compacting_after_every_event_gives_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # the other engine cleans its heap up a few entries a decision, from 16 entries on
    monkeypatch.setattr(timers, "MIN_TIMER_LIMIT", 16)
    monkeypatch.setattr(timers, "TIDY_STEP", 3)
    lines = _events(random.Random(23), 4000)
    plain, plain_road = _engine()
    compacted, compacted_road = _engine()
    dropped = 0
    ratio = 0.0  # the gradual heap's size over the always-compacted heap's
    for i, line in enumerate(lines):
        plain_road.process("test", Delivery(line, f"line:{i + 1}"))
        compacted_road.process("test", Delivery(line, f"line:{i + 1}"))
        dropped += compacted.compact_timers()
        ratio = max(ratio, plain.timer_entries / max(16, compacted.timer_entries))
        if i % 20 == 0:
            assert _rows(compacted) == _rows(plain), i
    end = json.loads(lines[-1])["ts"]
    for engine in (plain, compacted):
        engine.flush(None)
    assert _rows(compacted) == _rows(plain), end
    assert dropped > 1000  # answered contacts, solved tickets, moved deadlines: not vacuous
    assert ratio < 4  # the gradual clean-up kept up (without it: hundreds)


def test_the_heap_pops_what_a_plain_heap_would_while_it_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timers, "MIN_TIMER_LIMIT", 8)
    monkeypatch.setattr(timers, "TIDY_STEP", 40)
    rng = random.Random(5)
    live: dict[str, tuple[float, int]] = {}  # key -> its current entry; others are spent

    def spent(when: float, kind: int, key: str) -> bool:
        return live.get(key) != (when, kind)

    heap = TimerHeap(spent, inclusive={0})  # inclusive kinds sort first, as the engine's
    plain: list[tuple[float, int, str]] = []
    clock = 0.0
    dropped = peak = 0
    for step in range(20000):
        roll = rng.random()
        if roll < 0.5:  # a new or moved deadline
            key = f"k{rng.randrange(100)}"
            when = clock + rng.choice((0.0, 1.0, rng.uniform(0, 50000)))
            kind = rng.randrange(2)
            live[key] = (when, kind)
            heap.push(when, kind, key)
            heapq.heappush(plain, (when, kind, key))
        elif roll < 0.65 and live:  # an item moves on: its entries are spent
            del live[rng.choice(sorted(live))]
        else:
            clock += rng.choice((0.0, 0.5, 1.0, 3.0))
            dropped += heap.tidy()
            # a copy of a live entry (its key moved away and back) fires once: the engine's
            # timer finds its work done the second time
            got = list(dict.fromkeys(e for e in heap.pop_due(clock) if not spent(*e)))
            want: dict[tuple[float, int, str], None] = {}
            while plain and (plain[0][0] < clock or (plain[0][0] == clock and plain[0][1] == 0)):
                entry = heapq.heappop(plain)
                if not spent(*entry):
                    want[entry] = None
            assert got == list(want), step
            for _, _, key in got:
                live.pop(key, None)
            # the next wake-up is never after a live entry's instant
            assert heap.first() <= min((w for w, _ in live.values()), default=math.inf)
        # set aside and new heap each at most twice the live entries (100 keys) of a clean-up
        assert len(heap) <= 4 * 100, step
        peak = max(peak, len(plain))
    assert dropped > 3000
    assert peak > 2500  # what the heap would hold without its clean-up


def test_a_clean_up_emptied_by_pops_sets_the_next_limit_from_what_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timers, "MIN_TIMER_LIMIT", 8)
    monkeypatch.setattr(timers, "TIDY_STEP", 5)
    live: set[str] = set()
    heap = TimerHeap(lambda when, kind, key: key not in live, inclusive=())
    live.update(f"a{i}" for i in range(100))
    heap.extend((1.0, 0, f"a{i}") for i in range(100))  # the next clean-up past 200 entries
    for i in range(150):
        heap.push(2.0, 0, f"b{i}")  # spent at once
    assert heap.tidy() == 5  # 250 > 200: set aside, a first step drops 5
    assert len(list(heap.pop_due(10.0))) == 245  # every entry due: the set-aside heap empties
    assert len(heap) == 0
    for i in range(20):
        heap.push(20.0, 0, f"c{i}")  # spent
    # the limit now comes from the empty heap (8), not from the 100 entries of the re-arm
    assert heap.tidy() == 5


def _one_ticket_flood(moves: list[tuple[float, str, dict[str, str]]]) -> list[int]:
    """Feed one email ticket (24/7 clocks, ``pending`` pausing resolution) and then ``moves``
    (seconds after it, event type, fields) through the pipeline; the heap's size after each
    thousand moves."""
    engine = Engine(settings(ingest={"allowed_lateness": 0}))
    pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)

    def feed(n: int, kind: str, at: float, **fields: str) -> None:
        raw = {"event_id": f"e{n}", "type": kind, "ts": iso(T0 + at), "channel": "email"}
        line = json.dumps({**raw, "ticket_id": "t1", **fields}).encode()
        assert pipeline.process("test", Delivery(line, f"line:{n}")) is None

    feed(0, "ticket.created", 0.0)
    sizes = []
    for n, (at, kind, fields) in enumerate(moves, start=1):
        feed(n, kind, at, **fields)
        if n % 1000 == 0:
            sizes.append(engine.timer_entries)
    return sizes


def test_a_clock_paused_and_resumed_at_one_instant_keeps_one_entry() -> None:
    """Audit of 2026-12-05: 30,000 `pending`/`open` pairs on one ticket at one instant left
    60,004 heap entries, 4 of them distinct: each resume pushed the same entry again, and a
    clean-up kept every copy (none is spent: its instant is still the clock's deadline)."""
    moves = [
        (1.0, "ticket.status_changed", {"status": "pending" if i % 2 == 0 else "open"})
        for i in range(60_000)
    ]
    sizes = _one_ticket_flood(moves)
    assert max(sizes) <= 2 * timers.MIN_TIMER_LIMIT + timers.TIDY_STEP


def test_a_steady_solve_and_reopen_loop_does_not_raise_the_clean_ups_limit() -> None:
    """Audit of 2026-12-05: a ticket solved and reopened 500 times a second (each reopen pushes
    its clock's new deadlines, spending the old ones) left 71,001 entries after 100,000 loops,
    70,999 of them spent: each clean-up set the next one's limit from the heap's size when it
    ended, the entries pushed meanwhile included, so the limit kept rising (126,002)."""
    moves: list[tuple[float, str, dict[str, str]]] = []
    for i in range(30_000):
        at = 1.0 + i / 500
        moves.append((at, "ticket.solved", {}))
        moves.append((at + 0.001, "ticket.reopened", {}))
    sizes = _one_ticket_flood(moves)
    assert max(sizes) <= 2 * timers.MIN_TIMER_LIMIT + 2 * timers.TIDY_STEP, sizes
