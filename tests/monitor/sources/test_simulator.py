"""The simulator: deterministic, time-ordered, decodable, referentially sane (contacts, agents,
tickets, bot sessions, surveys, sentiment), with visible incidents, and paced in real time by its
source."""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from support_monitor.monitor.cluster.durable import Durability
from support_monitor.monitor.config import Settings, SimulatorSettings, parse_settings
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.daemon import SingleEngine
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import (
    AgentState,
    BotSessionEnded,
    ComplaintReceived,
    ContactAbandoned,
    ContactAnswered,
    ContactEnded,
    ContactQueued,
    Event,
    SentimentScored,
    SurveyAnswered,
    TicketCreated,
    TicketCustomerReplied,
    TicketPriorityChanged,
    TicketRated,
    TicketReopened,
    TicketResponded,
    TicketSolved,
    TicketStatusChanged,
    decode,
)
from support_monitor.monitor.sources import sim_model
from support_monitor.monitor.sources.simulator import SimulatorSource, generate, write_jsonl

START = 1_700_000_000.0
HOUR = 3600.0
DEFAULT_CHANNELS = Settings().channels
MIXED_CHANNELS = {
    "phone": ChannelSettings(answer_seconds=30, short_abandon_seconds=6, queues=("a", "b", "c")),
    "social": ChannelSettings(answer_seconds=120, first_response_seconds=1800),
    "web": ChannelSettings(resolution_seconds=7200, queues=("forms", "portal")),
    "ivr": ChannelSettings(),  # self-service by its name: escalates to social (chat-like)
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
        TicketStatusChanged,
        TicketPriorityChanged,
        TicketCustomerReplied,
        AgentState,
        SurveyAnswered,
        BotSessionEnded,
        SentimentScored,
    ):
        assert kinds[kind] > 0, kind
    # A sane rate: about 4 events a second at the defaults (30 contacts a minute).
    assert len(ids) < 6 * 2 * HOUR


def test_restart_with_another_start_never_reuses_ids():
    a = decoded(itertools.islice(generate(DEFAULT_CHANNELS, SimulatorSettings(), START), 500))
    b = decoded(itertools.islice(generate(DEFAULT_CHANNELS, SimulatorSettings(), START + 60), 500))

    def ids(events):
        return {e.event_id for _, e in events} | {getattr(e, "contact_id", None) for _, e in events}

    assert ids(a) & ids(b) <= {None}


# ---------------------------------------------------------------------- referential sanity


AGENT_NAME = re.compile(r"agent-([a-z]+)-\d{3}")
ON_QUEUE = ("available", "busy", "after_call_work")


class Checker:
    """An independent, tiny model of what may follow what; collects facts for the assertions."""

    def __init__(self, channels):
        self.concurrency = {"voice": 1, "phone": 1}  # voice agents take one call at a time
        self.channels = channels
        # id -> [state, channel, queue, queued_ts, agent]
        self.contacts: dict[str, list[Any]] = {}
        # id -> [state, channel, queue, created_ts, responses, status, priority, reopened]
        self.tickets: dict[str, list[Any]] = {}
        self.busy: Counter[tuple[str, str]] = Counter()  # (channel, agent) -> live contacts
        self.most_busy: Counter[tuple[str, str]] = Counter()  # the most it held at once
        self.agents: dict[tuple[str, str], list[Any]] = {}  # (channel, agent) -> [state, since]
        self.agent_seconds: Counter[tuple[str, str]] = Counter()  # (channel, state) -> seconds
        self.state_changes: list[tuple[float, str, str, str]] = []  # ts, channel, agent, state
        self.went_idle = 0  # contact.ended leaving its agent with no contact
        self.wrap_ups = 0  # agent.state after_call_work
        self.first_responses: list[tuple[float, float]] = []  # (seconds, target)
        self.waits_abandoned: list[float] = []
        self.waits_answered: list[tuple[str, float, float]] = []  # channel, queued ts, wait
        self.ratings: list[int] = []
        self.tags: list[tuple[str, ...]] = []
        self.solves = 0
        self.first_contact_solves = 0
        self.statuses: Counter[str] = Counter()
        self.customer_replies = 0
        self.priority_changes = 0
        self.bot: list[tuple[float, str, str]] = []  # ts, channel, outcome
        self.escalations: Counter[str] = Counter()  # live channel escalated to
        self.surveys: dict[tuple[str, str], list[int]] = {}  # (channel, survey) -> scores
        self.sentiments: list[tuple[str, float]] = []  # channel, score

    def feed(self, ts: float, e: Event) -> None:
        ch = self.channels[e.channel]
        assert e.queue in ch.queues
        if isinstance(e, ContactQueued | ContactAnswered | ContactAbandoned | ContactEnded):
            assert ch.answer_seconds is not None, "live event on a ticket-only channel"
            self.contact(ts, e)
        elif isinstance(e, AgentState):
            self.agent_state(ts, e)
        elif isinstance(
            e,
            TicketCreated
            | TicketResponded
            | TicketSolved
            | TicketReopened
            | TicketStatusChanged
            | TicketPriorityChanged
            | TicketCustomerReplied,
        ):
            self.ticket(ts, e)
        elif isinstance(e, BotSessionEnded):
            self.bot_session(ts, e)
        elif isinstance(e, TicketRated | SurveyAnswered | SentimentScored):
            self.voice(e)

    def owner(self, e) -> None:
        """A survey or score names a contact/ticket of its own channel that exists."""
        if getattr(e, "contact_id", None) is not None:
            assert self.contacts[e.contact_id][1] == e.channel
        if e.ticket_id is not None:
            t = self.tickets[e.ticket_id]
            assert t[1:3] == [e.channel, e.queue]
            if not isinstance(e, SentimentScored):
                assert t[0] == "solved"

    def voice(self, e) -> None:
        self.owner(e)
        if isinstance(e, TicketRated):
            self.ratings.append(e.rating)
            self.surveys.setdefault((e.channel, "csat"), []).append(e.rating)
        elif isinstance(e, SurveyAnswered):
            self.surveys.setdefault((e.channel, e.survey), []).append(e.score)
        else:
            assert -1 <= e.score <= 1
            assert not math.isnan(e.score)
            self.sentiments.append((e.channel, e.score))

    def set_agent(self, ts: float, channel: str, agent: str, state: str) -> None:
        key = (channel, agent)
        old, since = self.agents.get(key, ["offline", ts])
        self.agent_seconds[channel, old] += ts - since
        self.agents[key] = [state, ts]

    def agent_state(self, ts, e: AgentState) -> None:
        ch = self.channels[e.channel]
        assert ch.answer_seconds is not None, "agent on a channel with no live contacts"
        match = AGENT_NAME.fullmatch(e.agent_id)
        assert match
        assert match.group(1) == e.channel
        assert e.queues == ch.queues
        key = (e.channel, e.agent_id)
        old = self.agents.get(key, ["offline"])[0]
        assert e.state != old, "a state repeated"
        if e.state == "after_call_work":
            assert old == "busy"
            self.wrap_ups += 1
        assert self.busy[key] == 0, f"{e.state} while on a contact"  # busy is only implied
        if e.state in {"break", "offline"}:
            assert old in {"available", "after_call_work", "break"}, (old, e.state)
        self.set_agent(ts, e.channel, e.agent_id, e.state)
        self.state_changes.append((ts, e.channel, e.agent_id, e.state))

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
            key = (e.channel, e.agent_id)
            assert self.agents[key][0] in ON_QUEUE, "answered by an agent not on the queue"
            c[0], c[4] = "answered", e.agent_id
            self.busy[key] += 1
            assert self.busy[key] <= self.concurrency.get(e.channel, 2)
            self.most_busy[key] = max(self.most_busy[key], self.busy[key])
            if self.agents[key][0] != "busy":
                self.set_agent(ts, e.channel, e.agent_id, "busy")
            self.waits_answered.append((e.channel, c[3], ts - c[3]))
        elif isinstance(e, ContactAbandoned):
            assert c[0] == "waiting", "abandoned after being answered (or twice)"
            c[0] = "abandoned"
            self.waits_abandoned.append(ts - c[3])
        else:
            assert c[0] == "answered", "ended without being answered"
            c[0] = "ended"
            key = (e.channel, c[4])
            self.busy[key] -= 1
            self.went_idle += self.busy[key] == 0

    def bot_session(self, ts, e: BotSessionEnded) -> None:
        ch = self.channels[e.channel]
        assert ch.answer_seconds is None
        assert ch.first_response_seconds is None
        assert ch.resolution_seconds is None
        self.bot.append((ts, e.channel, e.outcome))
        if e.contact_id is None:
            return
        assert e.outcome == "escalated"
        c = self.contacts[e.contact_id]  # the hand-over queued the live contact just before
        assert c[0] == "waiting"
        assert c[3] == ts
        self.escalations[c[1]] += 1

    def ticket(self, ts, e) -> None:
        if isinstance(e, TicketCreated):
            assert e.ticket_id not in self.tickets
            self.tickets[e.ticket_id] = [
                "open",
                e.channel,
                e.queue,
                ts,
                0,
                "open",
                e.priority,
                False,
            ]
            self.tags.append(e.tags)
            return
        t = self.tickets[e.ticket_id]  # KeyError = a ticket event before its creation
        assert t[1:3] == [e.channel, e.queue]
        if isinstance(e, TicketReopened):
            assert t[0] == "solved"
            t[0], t[5], t[7] = "open", "open", True
            return
        assert t[0] == "open", f"{type(e).__name__} on a solved ticket"
        if isinstance(e, TicketResponded):
            assert t[5] == "open", "agent reply while waiting on the customer or a third party"
            target = self.channels[e.channel].first_response_seconds
            if t[4] == 0 and target is not None:
                self.first_responses.append((ts - t[3], target))
            t[4] += 1
        elif isinstance(e, TicketSolved):
            assert t[5] == "open"
            t[0] = "solved"
            self.solves += 1
            self.first_contact_solves += t[4] <= 1 and not t[7]
        elif isinstance(e, TicketStatusChanged):
            assert e.status != t[5]
            t[5] = e.status
            self.statuses[e.status] += 1
        elif isinstance(e, TicketCustomerReplied):
            assert t[5] == "pending"
            self.customer_replies += 1
        else:
            assert e.priority != t[6]
            t[6] = e.priority
            self.priority_changes += 1

    def occupancy(self, channel: str) -> float:
        busy = self.agent_seconds[channel, "busy"] + self.agent_seconds[channel, "after_call_work"]
        return busy / (busy + self.agent_seconds[channel, "available"])

    def on_queue_at(self, channel: str, when: float) -> int:
        """Agents of ``channel`` logged in and not on a break at ``when``."""
        last: dict[str, str] = {}
        for ts, ch, agent, state in self.state_changes:
            if ts > when:
                break
            if ch == channel:
                last[agent] = state
        return sum(state in ON_QUEUE for state in last.values())


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


def test_agent_concurrency_sets_how_many_contacts_an_agent_takes():
    """Chat takes two contacts per agent by default; ``agent_concurrency`` 1 makes it one, and
    3 lets an agent take three (the most seen at once in an hour of the default traffic)."""
    chat = DEFAULT_CHANNELS["chat"]

    def most_at_once(concurrency: int | None) -> int:
        channels = {**DEFAULT_CHANNELS}
        channels["chat"] = chat.model_copy(update={"agent_concurrency": concurrency})
        checker = Checker(channels)
        checker.concurrency["chat"] = concurrency or 2
        for ts, event in decoded(take(channels, SimulatorSettings(), HOUR)):
            checker.feed(ts, event)  # asserts no agent ever holds more than that
        return max(n for (channel, _), n in checker.most_busy.items() if channel == "chat")

    assert most_at_once(None) == 2
    assert most_at_once(1) == 1
    assert most_at_once(3) == 3


def test_agents_follow_their_contacts_and_the_forecast(two_hours):
    checker = check(DEFAULT_CHANNELS, two_hours)
    # Every contact that left its agent with nothing to do is followed by after-call work.
    assert checker.went_idle == checker.wrap_ups > 1000
    states = Counter(state for _, _, _, state in checker.state_changes)
    assert states["break"] > 0
    assert states["offline"] > 0
    assert {ch for _, ch, _, _ in checker.state_changes} == {"voice", "chat"}
    # Staffing matches the load: busy or wrapping up 70-95% of the time on the queue, over two
    # hours that include a queue surge on each live channel and two bot failures.
    for channel in ("voice", "chat"):
        assert 0.7 < checker.occupancy(channel) < 0.95, channel
        # The roster follows the intraday curve: fewer agents at the trough than at the peak.
        trough = checker.on_queue_at(channel, START + 0.25 * HOUR)
        peak = checker.on_queue_at(channel, START + HOUR)
        assert 0 < trough < 0.85 * peak, channel
        assert peak <= sum(name[0] == channel for name in checker.agents)


def test_tickets_wait_on_customers_and_some_are_solved_at_first_contact():
    events = decoded(take(DEFAULT_CHANNELS, SimulatorSettings(), 6 * HOUR))
    checker = check(DEFAULT_CHANNELS, events)
    assert checker.statuses["pending"] > checker.statuses["on_hold"] > 0
    assert checker.customer_replies > 0
    assert checker.priority_changes > 0
    # FCR as the contract defines it: at most one agent response and never reopened before.
    # The design share is 35% of tickets, more of the early solves (they come quickest).
    assert 0.3 < checker.first_contact_solves / checker.solves < 0.8
    priorities = Counter(t[6] for t in checker.tickets.values())
    assert priorities.most_common(1)[0][0] == "normal"
    assert min(priorities[p] for p in ("low", "high", "urgent")) > 0
    reopened = sum(t[7] for t in checker.tickets.values())
    assert reopened > 0


def test_surveys_and_sentiment_lean_positive_and_drop_after_bad_service(two_hours):
    checker = check(DEFAULT_CHANNELS, two_hours)
    for channel in ("voice", "chat"):
        nps = checker.surveys[channel, "nps"]
        ces = checker.surveys[channel, "ces"]
        assert len(nps) > 50
        assert len(ces) > 50
        promoters = sum(score >= 9 for score in nps) / len(nps)
        detractors = sum(score <= 6 for score in nps) / len(nps)
        assert -0.2 < promoters - detractors < 0.6
        assert 4.5 < sum(ces) / len(ces) < 6.2
    assert len(checker.surveys["chatbot", "csat"]) > 50  # the bot's "did this help?"
    scores = [score for _, score in checker.sentiments]
    negative = sum(score < -0.3 for score in scores) / len(scores)
    assert 0.03 < negative < 0.3
    assert sum(scores) / len(scores) > 0
    # Customers who waited past the target score lower than those answered in time.
    late = {c for c, v in checker.contacts.items() if v[0] == "ended"} & {
        e.contact_id
        for ts, e in two_hours
        if isinstance(e, ContactAnswered)
        and ts - checker.contacts[e.contact_id][3] > DEFAULT_CHANNELS[e.channel].answer_seconds
    }
    by_contact = {
        e.contact_id: e.score
        for _, e in two_hours
        if isinstance(e, SentimentScored) and e.contact_id is not None
    }
    waited = [score for cid, score in by_contact.items() if cid in late]
    on_time = [score for cid, score in by_contact.items() if cid not in late]
    assert len(waited) > 30
    assert sum(waited) / len(waited) < sum(on_time) / len(on_time) - 0.2


def test_agent_ids_are_pseudonyms():
    events = decoded(take(MIXED_CHANNELS, SimulatorSettings(seed=3, agents=5), 600))
    names: set[str] = {
        e.agent_id
        for _, e in events
        if isinstance(e, ContactAnswered | AgentState | TicketResponded) and e.agent_id
    }
    assert {name.split("-")[1] for name in names} == {"phone", "social", "web"}
    for name in names:
        assert AGENT_NAME.fullmatch(name), name


def test_mixed_channels_sane_and_accepted_by_the_engine():
    events = decoded(take(MIXED_CHANNELS, SimulatorSettings(seed=3, agents=5), 3 * HOUR))
    checker = check(MIXED_CHANNELS, events)
    assert checker.escalations["social"] > 0  # the ivr hands over to the chat-like channel
    assert {ch for _, ch, _ in checker.bot} == {"ivr"}
    kinds = Counter((type(e).__name__, e.channel) for _, e in events)
    assert kinds["AgentState", "phone"] > 0
    assert kinds["AgentState", "social"] > 0
    assert kinds["ContactQueued", "social"] > 0
    assert kinds["TicketCreated", "social"] > 0
    assert kinds["TicketSolved", "web"] > 0
    assert kinds["TicketReopened", "web"] + kinds["TicketReopened", "social"] > 0
    assert not any(isinstance(e, ContactQueued) and e.channel == "web" for _, e in events)
    assert engine_rejects(Settings(channels=MIXED_CHANNELS), events) == Counter()


def engine_rejects(settings, events) -> Counter[tuple[str, str]]:
    """(event type, reason) of every event the engine refuses, immediately or later."""
    engine = Engine(settings)
    rejects: Counter[tuple[str, str]] = Counter()
    for ts, event in events:
        engine.advance(ts)
        reason = engine.apply(event, ts, token=type(event).__name__)
        if reason is not None:
            rejects[type(event).__name__, str(reason)] += 1
        for token, late in engine.take_expired_early():
            rejects[str(token), str(late)] += 1
    return rejects


def test_default_channels_accepted_by_the_engine(two_hours):
    assert engine_rejects(Settings(), two_hours) == Counter()


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


def test_bot_failure_drops_containment_and_floods_chat(two_hours):
    failing = (
        sim_model.BOT_FAILURE_START,
        sim_model.BOT_FAILURE_START + sim_model.BOT_FAILURE_LENGTH,
    )
    before = (failing[0] - sim_model.BOT_FAILURE_LENGTH, failing[0])
    checker = check(DEFAULT_CHANNELS, two_hours)

    def containment(lo, hi):
        outcomes = [o for ts, _, o in checker.bot if START + lo <= ts < START + hi]
        return sum(o == "contained" for o in outcomes) / len(outcomes)

    def mean_chat_wait(lo, hi):
        waits = [w for ch, q, w in checker.waits_answered if ch == "chat" and lo <= q - START < hi]
        return sum(waits) / len(waits)

    for k in (0, 1):  # every hour
        shift = k * sim_model.INCIDENT_PERIOD
        assert containment(failing[0] + shift, failing[1] + shift) < 0.25
        assert containment(before[0] + shift, before[1] + shift) > 0.55
    assert arrivals(two_hours, "chat", *failing) > 1.3 * arrivals(two_hours, "chat", *before)
    assert mean_chat_wait(*failing) > 3 * mean_chat_wait(*before)
    # Escalated customers land on chat, and say so in their sentiment.
    assert checker.escalations["chat"] > 0


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
    bot = [e.outcome for ts, e in events if isinstance(e, BotSessionEnded)]
    assert sum(o == "contained" for o in bot) / len(bot) > 0.55  # no bot failure either


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


@pytest.mark.parametrize(
    ("resume", "starts_at"),
    [(START + 3600.0, START + 3600.0), (START - 60.0, START), (-math.inf, START)],
)
async def test_a_resumed_simulation_starts_at_the_later_of_the_wall_and_the_restored_clock(
    resume: float, starts_at: float
) -> None:
    """A restarted sped-up simulation goes on from the restored engine's clock; one that is
    behind the wall clock (or none) leaves the wall clock as the start."""
    fake = FakeTime(START)
    sim = SimulatorSettings(speed=30.0)
    source = SimulatorSource(DEFAULT_CHANNELS, sim, clock=fake.clock, sleep=fake.sleep)
    source.resume_after(resume)
    got = await collect(source, fake, 50)
    expected = list(itertools.islice(generate(DEFAULT_CHANNELS, sim, starts_at), 50))
    assert [d.raw for _, d in got] == [raw for _, raw in expected]
    async with source:
        assert source.simulated_now() == starts_at
        fake.now += 2.0  # two wall seconds: a simulated minute
        assert source.simulated_now() == starts_at + 60.0


async def test_a_restarted_sped_up_daemon_goes_on_from_the_restored_clock() -> None:
    """Audit of 2026-12-05: a daemon restarted from a snapshot with the simulator at speed 30
    started the simulation at the wall clock again, behind the snapshot's clock by 29 x the
    earlier run: its events applied but no tick ran until the simulation caught up (no alert,
    window or deadline moved meanwhile). The daemon's clock now goes on from the snapshot's."""
    settings = parse_settings({"sources": {"simulator": {"speed": 30}}})
    engine = Engine(settings)
    restored = time.time() + 3600.0  # a snapshot taken after two minutes at speed 30
    engine.advance(restored)
    served = SingleEngine(settings, Durability(settings.state, settings), engine)
    (source,) = served.sources
    assert isinstance(source, SimulatorSource)
    async with source:
        assert served.clock() >= restored
        first = await anext(source.events())
        assert decode(first.raw, 65536).ts.timestamp() >= restored
