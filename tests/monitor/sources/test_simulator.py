"""The simulator: deterministic, time-ordered, decodable, referentially sane, with visible
incidents, and paced in real time by its source."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ChannelSettings, Settings, SimulatorSettings
from monitor.engine.engine import Engine
from monitor.events import (
    ComplaintReceived,
    ContactAbandoned,
    ContactAnswered,
    ContactEnded,
    ContactQueued,
    Event,
    TicketCreated,
    TicketRated,
    TicketReopened,
    TicketResponded,
    TicketSolved,
    decode,
)
from monitor.sources import sim_model
from monitor.sources.simulator import SimulatorSource, generate, write_jsonl

START = 1_700_000_000.0
HOUR = 3600.0
DEFAULT_CHANNELS = Settings().channels
MIXED_CHANNELS = {
    "phone": ChannelSettings(answer_seconds=30, short_abandon_seconds=6, queues=("a", "b", "c")),
    "social": ChannelSettings(answer_seconds=120, first_response_seconds=1800),
    "web": ChannelSettings(resolution_seconds=7200, queues=("forms", "portal")),
}


def take(channels, sim, seconds, start=START):
    """Generated (time, raw) pairs of the first ``seconds`` of simulated time."""
    return list(
        itertools.takewhile(lambda p: p[0] < start + seconds, generate(channels, sim, start))
    )


def decoded(pairs) -> list[tuple[float, Event]]:
    return [(ts, decode(raw, 65536)) for ts, raw in pairs]


@pytest.fixture(scope="module")
def two_hours():
    return decoded(take(DEFAULT_CHANNELS, SimulatorSettings(), 2 * HOUR))


# ---------------------------------------------------------------------- determinism and order


def test_same_seed_same_bytes_other_seed_other_bytes():
    sim = SimulatorSettings(seed=42)
    first = list(itertools.islice(generate(DEFAULT_CHANNELS, sim, START), 3000))
    again = list(itertools.islice(generate(DEFAULT_CHANNELS, sim, START), 3000))
    other = list(
        itertools.islice(generate(DEFAULT_CHANNELS, SimulatorSettings(seed=43), START), 3000)
    )
    assert first == again
    assert first != other


def test_times_non_decreasing_and_match_the_stamped_ts(two_hours):
    times = [ts for ts, _ in two_hours]
    assert times == sorted(times)
    assert times[0] >= START
    for ts, event in two_hours:
        assert event.ts.utcoffset() is not None
        assert event.ts.timestamp() == pytest.approx(ts, abs=1e-6)


def test_every_event_decodes_with_unique_ids(two_hours):
    ids = [event.event_id for _, event in two_hours]
    assert len(ids) == len(set(ids)) > 5000
    kinds = Counter(type(event) for _, event in two_hours)
    for kind in (
        ContactQueued,
        ContactAnswered,
        ContactAbandoned,
        ContactEnded,
        TicketCreated,
        TicketResponded,
        TicketSolved,
        TicketRated,
        ComplaintReceived,
    ):
        assert kinds[kind] > 0, kind


def test_restart_with_another_start_never_reuses_ids():
    a = decoded(itertools.islice(generate(DEFAULT_CHANNELS, SimulatorSettings(), START), 500))
    b = decoded(itertools.islice(generate(DEFAULT_CHANNELS, SimulatorSettings(), START + 60), 500))

    def ids(events):
        return {e.event_id for _, e in events} | {getattr(e, "contact_id", None) for _, e in events}

    assert ids(a) & ids(b) <= {None}


# ---------------------------------------------------------------------- referential sanity


class Checker:
    """An independent, tiny model of what may follow what; collects facts for the assertions."""

    def __init__(self, channels):
        self.concurrency = {"voice": 1, "phone": 1}  # voice agents take one call at a time
        self.channels = channels
        # id -> [state, channel, queue, queued_ts, agent]
        self.contacts: dict[str, list[Any]] = {}
        # id -> [state, channel, queue, created_ts, responded]
        self.tickets: dict[str, list[Any]] = {}
        self.busy: Counter[str] = Counter()
        self.first_responses: list[tuple[float, float]] = []  # (seconds, target)
        self.waits_abandoned: list[float] = []
        self.ratings: list[int] = []
        self.tags: list[tuple[str, ...]] = []

    def feed(self, ts: float, e: Event) -> None:
        ch = self.channels[e.channel]
        assert e.queue in ch.queues
        if isinstance(e, ContactQueued | ContactAnswered | ContactAbandoned | ContactEnded):
            assert ch.answer_seconds is not None, "live event on a ticket-only channel"
            self.contact(ts, e)
        elif isinstance(e, TicketCreated | TicketResponded | TicketSolved | TicketReopened):
            self.ticket(ts, e)
        elif isinstance(e, TicketRated):
            self.ratings.append(e.rating)
            if e.ticket_id is not None:
                assert self.tickets[e.ticket_id][0] == "solved"
                assert self.tickets[e.ticket_id][1:3] == [e.channel, e.queue]

    def contact(self, ts, e) -> None:
        if isinstance(e, ContactQueued):
            assert e.contact_id not in self.contacts
            self.contacts[e.contact_id] = ["waiting", e.channel, e.queue, ts, None]
            return
        c = self.contacts[e.contact_id]  # KeyError = an outcome for a contact never queued
        assert c[1:3] == [e.channel, e.queue]
        if isinstance(e, ContactAnswered):
            assert c[0] == "waiting"
            assert e.agent_id
            c[0], c[4] = "answered", e.agent_id
            self.busy[e.agent_id] += 1
            assert self.busy[e.agent_id] <= self.concurrency.get(e.channel, 2)
        elif isinstance(e, ContactAbandoned):
            assert c[0] == "waiting", "abandoned after being answered (or twice)"
            c[0] = "abandoned"
            self.waits_abandoned.append(ts - c[3])
        else:
            assert c[0] == "answered", "ended without being answered"
            c[0] = "ended"
            self.busy[c[4]] -= 1

    def ticket(self, ts, e) -> None:
        if isinstance(e, TicketCreated):
            assert e.ticket_id not in self.tickets
            self.tickets[e.ticket_id] = ["open", e.channel, e.queue, ts, False]
            self.tags.append(e.tags)
            return
        t = self.tickets[e.ticket_id]  # KeyError = a ticket event before its creation
        assert t[1:3] == [e.channel, e.queue]
        if isinstance(e, TicketResponded):
            assert t[0] == "open"
            target = self.channels[e.channel].first_response_seconds
            if not t[4] and target is not None:
                self.first_responses.append((ts - t[3], target))
            t[4] = True
        elif isinstance(e, TicketSolved):
            assert t[0] == "open"
            t[0] = "solved"
        else:
            assert t[0] == "solved"
            t[0] = "open"


def check(channels, events) -> Checker:
    checker = Checker(channels)
    for ts, event in events:
        checker.feed(ts, event)
    return checker


def test_referential_sanity_default_channels(two_hours):
    checker = check(DEFAULT_CHANNELS, two_hours)
    states = Counter(c[0] for c in checker.contacts.values())
    assert states["ended"] > 1000
    assert states["abandoned"] > 0
    # Some short abandons, but most abandons are real ones.
    short = sum(w < 5 for w in checker.waits_abandoned)
    assert 0 < short < len(checker.waits_abandoned) / 2
    # Most first responses on time, some late.
    late = sum(seconds > target for seconds, target in checker.first_responses)
    assert 0 < late < 0.25 * len(checker.first_responses)
    # Ratings skewed positive; a few per cent of tickets tagged as complaints.
    assert sum(checker.ratings) / len(checker.ratings) > 3.5
    complaints = sum("complaint" in tags for tags in checker.tags)
    assert 0 < complaints < 0.1 * len(checker.tags)
    for tags in checker.tags:
        if "complaint" in tags:  # categorised, so ingest.complaint_categories can classify it
            assert set(tags) & set(sim_model.COMPLAINT_CATEGORIES)


def test_mixed_channels_sane_and_accepted_by_the_engine():
    events = decoded(take(MIXED_CHANNELS, SimulatorSettings(seed=3, agents=5), 3 * HOUR))
    check(MIXED_CHANNELS, events)
    kinds = Counter((type(e).__name__, e.channel) for _, e in events)
    assert kinds["ContactQueued", "social"] > 0
    assert kinds["TicketCreated", "social"] > 0
    assert kinds["TicketSolved", "web"] > 0
    assert kinds["TicketReopened", "web"] + kinds["TicketReopened", "social"] > 0
    assert not any(isinstance(e, ContactQueued) and e.channel == "web" for _, e in events)
    engine = Engine(Settings(channels=MIXED_CHANNELS))
    for ts, event in events:
        engine.advance(ts)
        assert engine.apply(event, ts) is None, event


def test_default_channels_accepted_by_the_engine(two_hours):
    engine = Engine(Settings())
    for ts, event in two_hours:
        engine.advance(ts)
        assert engine.apply(event, ts) is None, event


# ---------------------------------------------------------------------- incidents


def arrivals(events, channel, lo, hi) -> int:
    return sum(
        isinstance(e, ContactQueued) and e.channel == channel and START + lo <= ts < START + hi
        for ts, e in events
    )


def complaints(events, lo, hi) -> int:
    return sum(
        isinstance(e, ComplaintReceived) and START + lo <= ts < START + hi for ts, e in events
    )


def test_queue_surge_raises_arrivals_on_one_channel_then_the_next(two_hours):
    first = (sim_model.SURGE_START, sim_model.SURGE_START + sim_model.SURGE_LENGTH)
    normal = (1500.0, 2100.0)
    second = (first[0] + sim_model.INCIDENT_PERIOD, first[1] + sim_model.INCIDENT_PERIOD)
    # First surge on the first live channel (voice), the next hour's on the second (chat).
    assert arrivals(two_hours, "voice", *first) > 2 * arrivals(two_hours, "voice", *normal)
    assert arrivals(two_hours, "chat", *first) < 1.5 * arrivals(two_hours, "chat", *normal)
    assert arrivals(two_hours, "chat", *second) > 2 * arrivals(two_hours, "chat", *normal)
    # The surge makes customers give up.
    abandoned_in_surge = sum(
        isinstance(e, ContactAbandoned) and START + first[0] <= ts < START + first[1] + 120
        for ts, e in two_hours
    )
    abandoned_normal = sum(
        isinstance(e, ContactAbandoned) and START + normal[0] <= ts < START + normal[1] + 120
        for ts, e in two_hours
    )
    assert abandoned_in_surge > 3 * abandoned_normal


def test_complaint_spike_raises_complaints():
    events = decoded(take(DEFAULT_CHANNELS, SimulatorSettings(arrivals_per_minute=120), 1500))
    spike = (sim_model.SPIKE_START, sim_model.SPIKE_START + sim_model.SPIKE_LENGTH)
    assert complaints(events, *spike) > 3 * complaints(events, 1200.0, 1500.0)
    assert {e.category for _, e in events if isinstance(e, ComplaintReceived)} <= set(
        sim_model.COMPLAINT_CATEGORIES
    )


def test_no_incidents_means_no_surge():
    sim = SimulatorSettings(incidents=False, arrivals_per_minute=120)
    events = decoded(take(DEFAULT_CHANNELS, sim, 1500))
    surge = arrivals(events, "voice", 300.0, 900.0)
    after = arrivals(events, "voice", 900.0, 1500.0)
    assert surge < 1.3 * after
    assert complaints(events, 900.0, 1200.0) < 2.5 * complaints(events, 1200.0, 1500.0) + 5


# ---------------------------------------------------------------------- helpers


def test_split_agents_keeps_the_total_and_staffs_every_channel():
    assert sim_model.split_agents(12, [75.0, 30.0]) == [8, 4]
    assert sum(sim_model.split_agents(7, [1.0, 1.0, 1.0])) == 7
    assert sim_model.split_agents(1, [5.0, 1.0]) == [1, 1]


def test_write_jsonl_writes_the_window(tmp_path: Path):
    path = tmp_path / "sim.jsonl"
    count = write_jsonl(path, DEFAULT_CHANNELS, SimulatorSettings(seed=9), START, 600)
    lines = path.read_bytes().splitlines()
    assert count == len(lines) > 100
    times = [decode(line, 65536).ts.timestamp() for line in lines]
    assert times[0] >= START
    assert times[-1] < START + 600
    assert lines == [raw for _, raw in take(DEFAULT_CHANNELS, SimulatorSettings(seed=9), 600)]


# ---------------------------------------------------------------------- the real-time source


class FakeTime:
    """A clock that only moves when the source sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def collect(source: SimulatorSource, fake: FakeTime, n: int):
    out = []
    async with source:
        stream = source.events()
        async for delivery in stream:
            out.append((fake.now, delivery))
            if len(out) == n:
                break
        assert isinstance(stream, AsyncGenerator)  # events() is an async generator
        await stream.aclose()
    return out


@pytest.mark.parametrize("speed", [1.0, 60.0])
async def test_source_yields_in_real_time(speed):
    fake = FakeTime(START)
    sim = SimulatorSettings(speed=speed)
    source = SimulatorSource(DEFAULT_CHANNELS, sim, clock=fake.clock, sleep=fake.sleep)
    assert source.name == "simulator"
    got = await collect(source, fake, 1000)
    expected = list(itertools.islice(generate(DEFAULT_CHANNELS, sim, START), 1000))
    assert [d.raw for _, d in got] == [raw for _, raw in expected]
    assert [d.position for _, d in got] == [f"sim:{i}" for i in range(1, 1001)]
    for (wall, _), (ts, _) in zip(got, expected, strict=True):
        simulated = START + (wall - START) * speed
        assert ts <= simulated + 0.001 * speed, "yielded before it was due"
        assert simulated - ts < 0.001 * speed, "yielded late"
    if speed > 1:
        assert expected[-1][0] - got[-1][0] > 60, "event time runs ahead of the wall clock"
    # Sleeps are real waits, never a spin, and events due together share one sleep.
    positive = [s for s in fake.sleeps if s > 0]
    assert all(s > 0.001 for s in positive)
    assert len(positive) <= len({ts for ts, _ in expected})


async def test_source_batches_a_backlog_without_blocking_the_loop():
    fake = FakeTime(START)
    source = SimulatorSource(
        DEFAULT_CHANNELS, SimulatorSettings(), clock=fake.clock, sleep=fake.sleep
    )
    async with source:
        stream = source.events()
        first = await anext(stream)
        assert first.position == "sim:1"
        fake.now += 600  # the consumer was stuck for ten minutes: a backlog is due at once
        sleeps_before = len(fake.sleeps)
        backlog = [await anext(stream) for _ in range(1000)]
        assert isinstance(stream, AsyncGenerator)  # events() is an async generator
        await stream.aclose()
    due = [decode(d.raw, 65536).ts.timestamp() for d in backlog]
    assert max(due) <= fake.now
    # Only zero-length yields to the loop, no timed sleeps, while the backlog drains.
    assert set(fake.sleeps[sleeps_before:]) <= {0}
    assert len(fake.sleeps) > sleeps_before


async def test_events_outside_the_context_manager_is_an_error():
    source = SimulatorSource(DEFAULT_CHANNELS, SimulatorSettings())
    with pytest.raises(AssertionError):
        await anext(source.events())
