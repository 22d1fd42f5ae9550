"""The discrete-event contact center behind the simulator source: one heap of happenings.

A happening runs at its time, may emit events stamped with that time, and schedules later
happenings. Output is therefore in time order by construction, and every outcome follows its cause
(answered after queued, solved after created, an agent's after-call work after its contact ended).
One seeded ``random.Random`` drives everything and ties in the heap break by insertion order, so a
seed and a start time always give the same bytes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import msgspec

from support_monitor.monitor.config import SimulatorSettings
from support_monitor.monitor.config_channel import ChannelSettings

DAY_SECONDS = 7200.0
"""One compressed "day": the intraday curve (trough at start, peak 1 h later) repeats every 2 h."""
CURVE_AMPLITUDE = 0.25
PEAK_OCCUPANCY = 0.85
"""Handle time is capped so that the whole pool would run at this occupancy at the daily peak."""
WRAP_SHARE = 0.1
"""After-call work, as a share of the mean handle time, before an agent takes the next one."""
INCIDENT_PERIOD = 3600.0
SURGE_START, SURGE_LENGTH, SURGE_FACTOR = 300.0, 600.0, 3.5
SPIKE_START, SPIKE_LENGTH, SPIKE_FACTOR = 900.0, 300.0, 7.0
BOT_FAILURE_START, BOT_FAILURE_LENGTH = 2400.0, 600.0
TICKETS_PER_CONTACT = 0.2
COMPLAINTS_PER_CONTACT = 1 / 60
BOT_SESSIONS_PER_CONTACT = 0.8
"""Self-service sessions per live contact (``0.8 x arrivals_per_minute``, split over bots)."""
BOT_OUTCOMES = ("contained", "escalated", "abandoned")
BOT_NORMAL = (0.65, 0.20, 0.15)
BOT_FAILING = (0.10, 0.80, 0.10)
"""Outcome shares while the bot works and while it fails (the scripted incident)."""
BOT_CSAT_SHARE = 0.15
"""Contained sessions whose customer answers the bot's "did this help?" (a CSAT survey)."""
SHORT_ABANDON_SHARE = 0.04
CONTACT_SURVEYS = (0.10, 0.06, 0.06)
"""Shares of ended contacts answering a CSAT (as ``ticket.rated``), an NPS or a CES survey."""
TICKET_SURVEYS = (0.30, 0.10, 0.10)
"""Shares of solved tickets rated (``ticket.rated``) or answering an NPS or a CES survey."""
SENTIMENT_SHARE = 0.5
"""Ended contacts and customer messages of tickets that get a ``sentiment.scored``."""
BOT_SENTIMENT_SHARE = 0.3
SENTIMENT_SIGMA = 0.35
SPIKE_SENTIMENT_SHIFT = -0.35
"""Sentiment means move down by this much during the complaint spike."""
COMPLAINT_TAG_SHARE = 0.03
FIRST_CONTACT_RESOLUTION = 0.35
REOPEN_SHARE = 0.05
PRIORITY_CHANGE_SHARE = 0.08
ON_HOLD_SHARE = 0.15
"""Conversation rounds of a ticket that wait on a third party (``on_hold``), not the customer."""
TICKET_TEAM = 6
DEFAULT_FIRST_RESPONSE = 4 * 3600.0
ROSTER_STEP = 300.0
"""Every 5 simulated minutes the roster logs agents in or out to follow the forecast."""
ROSTER_SERVICE_LEVEL = 0.9
"""The roster's need: the agents for this Erlang C service level (answer within
``answer_seconds``), and at least enough to keep the forecast load at ``ROSTER_OCCUPANCY``."""
ROSTER_OCCUPANCY = 0.8
BREAK_SLACK = 0.1
"""Agents rostered beyond that need, so breaks can be taken."""
BREAK_EVERY = (2700.0, 5400.0)
BREAK_LENGTH = (300.0, 900.0)
COMPLAINT_CATEGORIES = ("billing", "service", "product")
_CATEGORY_WEIGHTS = (0.45, 0.35, 0.2)
_TICKET_TAGS = ("billing", "account", "delivery", "bug", "refund", "password")
_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_WEIGHTS = (0.2, 0.6, 0.15, 0.05)
_PRIORITY_PACE = {"low": 1.3, "normal": 1.0, "high": 0.6, "urgent": 0.3}
"""Agent reply times scale with the ticket's priority."""
_PRIORITY_UP = {"low": "normal", "normal": "high", "high": "urgent", "urgent": "high"}
_PRIORITY_DOWN = {"low": "normal", "normal": "low", "high": "normal", "urgent": "high"}
_HAPPY = (0.03, 0.04, 0.1, 0.3, 0.53)
_UNHAPPY = (0.2, 0.15, 0.2, 0.25, 0.2)
_RATINGS = (1, 2, 3, 4, 5)
_NPS_HAPPY = (0.02, 0.01, 0.01, 0.02, 0.02, 0.05, 0.07, 0.12, 0.18, 0.22, 0.28)
_NPS_UNHAPPY = (0.08, 0.05, 0.06, 0.07, 0.08, 0.12, 0.12, 0.14, 0.12, 0.08, 0.08)
_CES_HAPPY = (0.02, 0.03, 0.05, 0.10, 0.20, 0.30, 0.30)
_CES_UNHAPPY = (0.10, 0.12, 0.15, 0.20, 0.18, 0.15, 0.10)
_NPS_SCORES = tuple(range(11))
_CES_SCORES = tuple(range(1, 8))
_WAITING, _ASSIGNED, _GONE = range(3)
_OFF, _ON, _BREAK = range(3)
_STAY, _TO_BREAK, _TO_OFFLINE = range(3)

Action = Callable[[], None]
Step = tuple[float, str, dict[str, object]]


@dataclass(frozen=True, slots=True)
class Profile:
    """Typical mean handle time and how many contacts one agent works at once."""

    handle: float
    concurrency: int


VOICE = Profile(300.0, 1)
CHAT = Profile(240.0, 2)


def profile_for(channel: str) -> Profile:
    """Voice-like names get the voice profile; every other live channel is chat-like."""
    name = channel.lower()
    return VOICE if any(word in name for word in ("voice", "phone", "call")) else CHAT


def live_profile(channel: str, settings: ChannelSettings) -> Profile:
    """The channel's profile (:func:`profile_for`), with the contacts an agent works at once
    taken from ``agent_concurrency`` when the channel sets it."""
    profile = profile_for(channel)
    if settings.agent_concurrency is None:
        return profile
    return Profile(profile.handle, settings.agent_concurrency)


def is_self_service(channel: str, settings: ChannelSettings) -> bool:
    """A channel with no targets at all whose name says bot, IVR or self-service."""
    if settings.is_live or settings.first_response_seconds or settings.resolution_seconds:
        return False
    name = channel.lower()
    return any(word in name for word in ("bot", "ivr", "self"))


def intraday(elapsed: float) -> float:
    """Arrival-rate multiplier over the compressed day (0.75 at start, 1.25 at the peak)."""
    return 1.0 - CURVE_AMPLITUDE * math.cos(2 * math.pi * elapsed / DAY_SECONDS)


def surge_number(elapsed: float) -> int | None:
    """The number of the queue surge running ``elapsed`` seconds after start, else ``None``."""
    if elapsed < SURGE_START:
        return None
    k, offset = divmod(elapsed - SURGE_START, INCIDENT_PERIOD)
    return int(k) if offset < SURGE_LENGTH else None


def in_complaint_spike(elapsed: float) -> bool:
    """Whether the complaint spike runs ``elapsed`` seconds after start."""
    return elapsed >= SPIKE_START and (elapsed - SPIKE_START) % INCIDENT_PERIOD < SPIKE_LENGTH


def in_bot_failure(elapsed: float) -> bool:
    """Whether the self-service bot is failing ``elapsed`` seconds after start."""
    return (
        elapsed >= BOT_FAILURE_START
        and (elapsed - BOT_FAILURE_START) % INCIDENT_PERIOD < BOT_FAILURE_LENGTH
    )


def split_agents(total: int, loads: list[float]) -> list[int]:
    """Agents per channel in proportion to offered load; every channel gets at least one."""
    spare = max(total - len(loads), 0)
    weight = sum(loads)
    shares = [spare * load / weight for load in loads]
    counts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(loads)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: spare - sum(counts)]:
        counts[i] += 1
    return [count + 1 for count in counts]


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in an M/M/N queue (Erlang B recursion, then C)."""
    if servers <= load:
        return 1.0
    b = 1.0
    for n in range(1, servers + 1):
        b = load * b / (n + load * b)
    return servers * b / (servers - load * (1 - b))


def servers_for(load: float, handle: float, answer: float, level: float) -> int:
    """Fewest servers for which Erlang C predicts ``level`` of arrivals answered within
    ``answer`` seconds, with ``load`` Erlangs of mean ``handle`` seconds."""
    n = math.floor(load) + 1
    while 1 - erlang_c(n, load) * math.exp(-(n - load) * answer / handle) < level:
        n += 1
    return n


def _cumulative(n: int) -> list[float]:
    """Cumulative queue weights 1, 0.7, 0.49, ...: the first queue is the busiest."""
    total, out = 0.0, []
    for i in range(n):
        total += 0.7**i
        out.append(total)
    return out


@dataclass(slots=True)
class _Contact:
    cid: str
    queue: str
    queued: float
    state: int = _WAITING
    agent: int = -1
    late: bool = False


@dataclass(slots=True)
class _Agent:
    """One agent of a live channel. ``ringing + talking + wrapping`` of its slots are taken; the
    others are free while the agent is on shift and not about to leave (``idle`` or ``partial``
    of its channel)."""

    name: str
    mode: int = _OFF
    away: int = _STAY
    """Where the agent goes once its last contact is wrapped up (break or offline)."""
    ringing: int = 0
    talking: int = 0
    wrapping: int = 0
    state: str = "offline"
    """The state the stream implies now (``busy`` comes from ``contact.answered``)."""
    shift: int = 0
    """Counts logins and logouts: a happening scheduled in an earlier shift is stale."""
    break_planned: bool = False

    @property
    def engaged(self) -> int:
        return self.ringing + self.talking + self.wrapping


@dataclass(slots=True)
class _Live:
    """One live channel: its arrival rate, its agent pool and the FIFO line of waiting contacts."""

    name: str
    rate: float
    forecast: float
    """Base arrival rate the roster plans for: own arrivals plus expected bot escalations."""
    queues: tuple[str, ...]
    weights: list[float]
    answer: float
    short_abandon: float
    handle: float
    patience: float
    concurrency: int
    pool: list[_Agent]
    idle: deque[int] = field(default_factory=deque)
    """Free agents with no contact, the longest idle first."""
    partial: deque[int] = field(default_factory=deque)
    """One entry per free slot of agents that already work a contact (chat-like channels)."""
    line: deque[_Contact] = field(default_factory=deque)
    waiting: int = 0
    offline: deque[int] = field(default_factory=deque)
    order: deque[tuple[int, int]] = field(default_factory=deque)
    """(agent, shift) in login order: the longest on shift logs out first."""
    required: int = 0
    """Agents the roster's Erlang C asked for at its last step."""


@dataclass(frozen=True, slots=True)
class _TicketDesk:
    """One ticket channel: arrival rate and the targets its response times are drawn around."""

    name: str
    rate: float
    queues: tuple[str, ...]
    weights: list[float]
    first_response: float | None
    fr_basis: float
    nr_basis: float
    res_basis: float


@dataclass(frozen=True, slots=True)
class _Bot:
    """One self-service channel and the live channel its sessions escalate to (if any)."""

    name: str
    rate: float
    queues: tuple[str, ...]
    weights: list[float]
    escalate_to: int | None


def _escalation_target(live_names: Sequence[str]) -> int | None:
    """Bots hand over to the first chat-like live channel, else to the first live one."""
    for i, name in enumerate(live_names):
        if profile_for(name) is CHAT:
            return i
    return 0 if live_names else None


def _bots(channels: Mapping[str, ChannelSettings], sim: SimulatorSettings) -> list[_Bot]:
    names = [name for name, ch in channels.items() if is_self_service(name, ch)]
    live = [name for name, ch in channels.items() if ch.is_live]
    target = _escalation_target(live)
    rate = sim.arrivals_per_minute / 60 * BOT_SESSIONS_PER_CONTACT / max(1, len(names))
    return [
        _Bot(
            name=name,
            rate=rate,
            queues=channels[name].queues,
            weights=_cumulative(len(channels[name].queues)),
            escalate_to=target,
        )
        for name in names
    ]


def _live_channels(
    channels: Mapping[str, ChannelSettings], sim: SimulatorSettings, bots: list[_Bot]
) -> list[_Live]:
    names = [name for name, ch in channels.items() if ch.is_live]
    if not names:
        return []
    rate = sim.arrivals_per_minute / 60 / len(names)
    escalations = [0.0] * len(names)
    for bot in bots:
        if bot.escalate_to is not None:
            escalations[bot.escalate_to] += bot.rate * BOT_NORMAL[1]
    profiles = [live_profile(name, channels[name]) for name in names]
    loads = [
        (rate + extra) * p.handle / p.concurrency
        for p, extra in zip(profiles, escalations, strict=True)
    ]
    staff = split_agents(sim.agents, loads)
    out = []
    for name, profile, agents, extra in zip(names, profiles, staff, escalations, strict=True):
        ch = channels[name]
        assert ch.answer_seconds is not None
        peak = (rate + extra) * (1 + CURVE_AMPLITUDE) * (1 + WRAP_SHARE)
        handle = min(profile.handle, PEAK_OCCUPANCY * agents * profile.concurrency / peak)
        out.append(
            _Live(
                name=name,
                rate=rate,
                forecast=rate + extra,
                queues=ch.queues,
                weights=_cumulative(len(ch.queues)),
                answer=ch.answer_seconds,
                short_abandon=ch.short_abandon_seconds,
                handle=handle,
                patience=max(60.0, 4 * ch.answer_seconds),
                concurrency=profile.concurrency,
                pool=[_Agent(f"agent-{name}-{i + 1:03d}") for i in range(agents)],
                offline=deque(range(agents)),
            )
        )
    return out


def _ticket_desks(
    channels: Mapping[str, ChannelSettings], sim: SimulatorSettings
) -> list[_TicketDesk]:
    names = [
        name
        for name, ch in channels.items()
        if (not ch.is_live and not is_self_service(name, ch))
        or ch.first_response_seconds
        or ch.resolution_seconds
    ]
    out = []
    for name in names:
        ch = channels[name]
        fr, res = ch.first_response_seconds, ch.resolution_seconds
        fr_basis = fr or (res / 8 if res else DEFAULT_FIRST_RESPONSE)
        out.append(
            _TicketDesk(
                name=name,
                rate=sim.arrivals_per_minute / 60 * TICKETS_PER_CONTACT / len(names),
                queues=ch.queues,
                weights=_cumulative(len(ch.queues)),
                first_response=fr,
                fr_basis=fr_basis,
                nr_basis=ch.next_reply_seconds or fr_basis,
                res_basis=res or 8 * fr_basis,
            )
        )
    return out


class ContactCenter:
    """The simulation state; :meth:`run` is the endless, time-ordered event stream."""

    def __init__(
        self, channels: Mapping[str, ChannelSettings], sim: SimulatorSettings, start: float
    ) -> None:
        if not channels:
            raise ValueError("the simulator needs at least one channel")
        self._rng = random.Random(sim.seed)  # noqa: S311 - a reproducible simulation, not secrets
        self._start = start
        self._incidents = sim.incidents
        self._tag = format(int(start), "x")
        self._heap: list[tuple[float, int, Action]] = []
        self._seq = 0
        self._events = 0
        self._items = 0
        self._out: list[tuple[float, bytes]] = []
        self.now = math.ceil(start * 1000) / 1000  # the first millisecond at or after start
        self._bots = _bots(channels, sim)
        self._live = _live_channels(channels, sim, self._bots)
        self._desks = _ticket_desks(channels, sim)
        self._complaint_rate = sim.arrivals_per_minute / 60 * COMPLAINTS_PER_CONTACT
        for ch in self._live:
            self._roster(ch)
        self._start_arrivals(channels)

    def run(self) -> Iterator[tuple[float, bytes]]:
        """Pop happenings in time order; their events are yielded before the next one runs."""
        heap, out = self._heap, self._out
        while heap:
            when, _, action = heapq.heappop(heap)
            self.now = when
            action()
            if out:
                yield from out
                out.clear()

    # ------------------------------------------------------------------ plumbing

    def _at(self, when: float, action: Action) -> None:
        """Schedule ``action``; times sit on the millisecond grid the events are stamped with."""
        self._seq += 1
        heapq.heappush(self._heap, (round(when, 3), self._seq, action))

    def _emit(self, kind: str, channel: str, queue: str, **fields: object) -> None:
        self._events += 1
        stamp = datetime.fromtimestamp(self.now, UTC).isoformat(timespec="milliseconds")
        event = {
            "event_id": f"sim-{self._tag}-{self._events}",
            "type": kind,
            "ts": stamp,
            "channel": channel,
            "queue": queue,
            **fields,
        }
        self._out.append((self.now, msgspec.json.encode(event)))

    def _item_id(self, prefix: str) -> str:
        """Contact/ticket/session ids carry the start time: a restarted simulator never reuses
        one."""
        self._items += 1
        return f"{prefix}-{self._tag}-{self._items}"

    def _pick(self, queues: tuple[str, ...], weights: list[float]) -> str:
        return queues[0] if len(queues) == 1 else self._rng.choices(queues, cum_weights=weights)[0]

    def _lognormal(self, median: float, sigma: float, floor: float) -> float:
        return max(floor, median * math.exp(sigma * self._rng.gauss()))

    def _rating(self, unhappy: bool) -> int:
        return self._rng.choices(_RATINGS, weights=_UNHAPPY if unhappy else _HAPPY)[0]

    def _survey(self, kind: int, unhappy: bool) -> tuple[str, dict[str, object]]:
        """Survey number ``kind`` (0 CSAT as ``ticket.rated``, 1 NPS, 2 CES): type and fields."""
        rng = self._rng
        if kind == 0:
            return "ticket.rated", {"rating": self._rating(unhappy)}
        if kind == 1:
            score = rng.choices(_NPS_SCORES, weights=_NPS_UNHAPPY if unhappy else _NPS_HAPPY)[0]
            return "survey.answered", {"survey": "nps", "score": score}
        score = rng.choices(_CES_SCORES, weights=_CES_UNHAPPY if unhappy else _CES_HAPPY)[0]
        return "survey.answered", {"survey": "ces", "score": score}

    def _survey_kind(self, shares: tuple[float, float, float]) -> int | None:
        """One draw: which survey (if any) a customer answers."""
        draw = self._rng.random()
        for kind, share in enumerate(shares):
            if draw < share:
                return kind
            draw -= share
        return None

    def _sentiment(self, mean: float, when: float) -> float:
        """A score in -1..1 around ``mean`` (lower during the complaint spike), 3 decimals."""
        if self._incidents and in_complaint_spike(when - self._start):
            mean += SPIKE_SENTIMENT_SHIFT
        score = mean + SENTIMENT_SIGMA * self._rng.gauss()
        return round(min(1.0, max(-1.0, score)), 3)

    # ------------------------------------------------------------------ arrivals

    def _start_arrivals(self, channels: Mapping[str, ChannelSettings]) -> None:
        surge = SURGE_FACTOR if self._incidents else 1.0
        for i, ch in enumerate(self._live):
            rate = partial(self._live_rate, i)
            self._poisson(rate, ch.rate * (1 + CURVE_AMPLITUDE) * surge, partial(self._arrive, ch))
        for desk in self._desks:
            rate = partial(self._curve_rate, desk.rate)
            self._poisson(rate, desk.rate * (1 + CURVE_AMPLITUDE), partial(self._new_ticket, desk))
        for bot in self._bots:
            rate = partial(self._curve_rate, bot.rate)
            self._poisson(rate, bot.rate * (1 + CURVE_AMPLITUDE), partial(self._bot_session, bot))
        spike = SPIKE_FACTOR if self._incidents else 1.0
        peak = self._complaint_rate * (1 + CURVE_AMPLITUDE) * spike
        names = list(channels)
        weights = [self._channel_weight(name) for name in names]
        arrive = partial(self._complaint, names, weights, channels)
        self._poisson(self._spike_rate, peak, arrive)

    def _channel_weight(self, name: str) -> float:
        rates = [ch.rate for ch in self._live if ch.name == name]
        rates += [desk.rate for desk in self._desks if desk.name == name]
        return sum(rates) or 1e-9

    def _poisson(self, rate: Callable[[], float], peak: float, arrive: Action) -> None:
        """Next candidate of a thinned Poisson process whose rate never exceeds ``peak``."""
        when = self.now + self._rng.expovariate(peak)
        self._at(when, partial(self._candidate, rate, peak, arrive))

    def _candidate(self, rate: Callable[[], float], peak: float, arrive: Action) -> None:
        if self._rng.random() * peak < rate():
            arrive()
        self._poisson(rate, peak, arrive)

    def _curve_rate(self, base: float) -> float:
        return base * intraday(self.now - self._start)

    def _live_rate(self, index: int) -> float:
        elapsed = self.now - self._start
        rate = self._live[index].rate * intraday(elapsed)
        surge = surge_number(elapsed) if self._incidents else None
        if surge is not None and surge % len(self._live) == index:
            rate *= SURGE_FACTOR
        return rate

    def _spike_rate(self) -> float:
        elapsed = self.now - self._start
        rate = self._complaint_rate * intraday(elapsed)
        return rate * SPIKE_FACTOR if self._incidents and in_complaint_spike(elapsed) else rate

    # ------------------------------------------------------------------ live contacts

    def _arrive(self, ch: _Live) -> None:
        self._enqueue(ch, self._item_id("c"), self._pick(ch.queues, ch.weights))

    def _enqueue(self, ch: _Live, cid: str, queue: str) -> None:
        c = _Contact(cid, queue, self.now)
        self._emit("contact.queued", ch.name, c.queue, contact_id=c.cid)
        ch.line.append(c)
        ch.waiting += 1
        self._at(self.now + self._patience(ch), partial(self._give_up, ch, c))
        self._route(ch)

    def _patience(self, ch: _Live) -> float:
        """Exponential patience, plus a few who hang up at once (the short abandons)."""
        rng = self._rng
        if rng.random() < SHORT_ABANDON_SHARE:
            return rng.uniform(0.5, max(0.5, 0.9 * ch.short_abandon))
        return rng.expovariate(1 / ch.patience)

    def _give_up(self, ch: _Live, c: _Contact) -> None:
        if c.state != _WAITING:
            return
        c.state = _GONE
        ch.waiting -= 1
        self._emit("contact.abandoned", ch.name, c.queue, contact_id=c.cid)

    def _route(self, ch: _Live) -> None:
        """The longest-waiting contact goes to an agent that already works a contact and has a
        free slot, else to the longest-idle agent (chats are packed onto agents)."""
        while ch.waiting and (ch.partial or ch.idle):
            c = ch.line.popleft()
            if c.state != _WAITING:
                continue  # abandoned while in line: dropped lazily here
            c.state = _ASSIGNED
            if ch.partial:
                c.agent = ch.partial.popleft()
            else:
                c.agent = ch.idle.popleft()
                ch.partial.extend([c.agent] * (ch.concurrency - 1))
            ch.pool[c.agent].ringing += 1
            ch.waiting -= 1
            self._at(self.now + self._rng.uniform(0.5, 3.0), partial(self._answer, ch, c))

    def _answer(self, ch: _Live, c: _Contact) -> None:
        c.late = self.now - c.queued > ch.answer
        agent = ch.pool[c.agent]
        agent.ringing -= 1
        agent.talking += 1
        agent.state = "busy"  # implied by contact.answered naming the agent
        self._emit("contact.answered", ch.name, c.queue, contact_id=c.cid, agent_id=agent.name)
        handle = self._lognormal(ch.handle * math.exp(-0.125), 0.5, floor=2.0)  # mean ~ handle
        self._at(self.now + handle, partial(self._end, ch, c))

    def _end(self, ch: _Live, c: _Contact) -> None:
        self._emit("contact.ended", ch.name, c.queue, contact_id=c.cid)
        agent = ch.pool[c.agent]
        agent.talking -= 1
        agent.wrapping += 1
        if agent.talking == 0:
            self._agent_state(ch, agent, "after_call_work")
        rng = self._rng
        kind = self._survey_kind(CONTACT_SURVEYS)
        if kind is not None:
            event, fields = self._survey(kind, unhappy=c.late)
            if kind:
                fields["contact_id"] = c.cid
            self._at(
                self.now + rng.uniform(20.0, 120.0),
                partial(self._emit, event, ch.name, c.queue, **fields),
            )
        if rng.random() < SENTIMENT_SHARE:
            when = self.now + rng.uniform(1.0, 10.0)
            score = self._sentiment(-0.15 if c.late else 0.25, when)
            self._at(
                when,
                partial(
                    self._emit, "sentiment.scored", ch.name, c.queue, score=score, contact_id=c.cid
                ),
            )
        wrap = rng.uniform(0.5, 1.5) * WRAP_SHARE * ch.handle
        self._at(self.now + wrap, partial(self._wrapped, ch, c.agent))

    def _wrapped(self, ch: _Live, index: int) -> None:
        """One slot's after-call work is done: the slot is free again, or the agent leaves."""
        agent = ch.pool[index]
        agent.wrapping -= 1
        if agent.away != _STAY:
            if agent.engaged == 0:
                self._leave(ch, index)
            return
        if agent.talking == 0 and agent.wrapping == 0:
            self._agent_state(ch, agent, "available")
        if agent.engaged:
            ch.partial.append(index)
        else:
            for _ in range(ch.concurrency - 1):
                ch.partial.remove(index)
            ch.idle.append(index)
        self._route(ch)

    # ------------------------------------------------------------------ agents

    def _agent_state(self, ch: _Live, agent: _Agent, state: str) -> None:
        if agent.state == state:
            return
        agent.state = state
        self._emit(
            "agent.state",
            ch.name,
            ch.queues[0],
            agent_id=agent.name,
            state=state,
            queues=list(ch.queues),
        )

    def _roster(self, ch: _Live) -> None:
        """Log agents in or out so the staffed count follows the forecast (not the incidents)."""
        elapsed = self.now - self._start
        rate = ch.forecast * max(intraday(elapsed), intraday(elapsed + ROSTER_STEP))
        # An agent is one server working ``concurrency`` contacts at once, each that much faster.
        busy = ch.handle * (1 + WRAP_SHARE) / ch.concurrency
        agents = servers_for(rate * busy, busy, ch.answer, ROSTER_SERVICE_LEVEL)
        agents = max(agents, math.ceil(rate * busy / ROSTER_OCCUPANCY))
        ch.required = min(len(ch.pool), agents)
        target = min(len(ch.pool), ch.required + math.ceil(BREAK_SLACK * ch.required))
        staffed = sum(a.mode != _OFF and a.away != _TO_OFFLINE for a in ch.pool)
        for i, agent in enumerate(ch.pool):  # first keep those about to leave
            if staffed >= target:
                break
            if agent.mode != _OFF and agent.away == _TO_OFFLINE:
                self._stay(ch, i)
                staffed += 1
        while staffed < target and ch.offline:
            self._login(ch, ch.offline.popleft())
            staffed += 1
        while staffed > target and ch.order:
            i, shift = ch.order.popleft()
            agent = ch.pool[i]
            if agent.shift != shift or agent.away == _TO_OFFLINE:
                continue  # an entry of an earlier shift, or already leaving
            self._withdraw(ch, i, _TO_OFFLINE)
            staffed -= 1
        self._route(ch)
        self._at(self.now + ROSTER_STEP, partial(self._roster, ch))

    def _login(self, ch: _Live, index: int) -> None:
        agent = ch.pool[index]
        agent.mode, agent.away = _ON, _STAY
        agent.shift += 1
        ch.order.append((index, agent.shift))
        self._agent_state(ch, agent, "available")
        ch.idle.append(index)
        self._plan_break(ch, index)

    def _plan_break(self, ch: _Live, index: int) -> None:
        ch.pool[index].break_planned = True
        when = self.now + self._rng.uniform(*BREAK_EVERY)
        self._at(when, partial(self._break_due, ch, index, ch.pool[index].shift))

    def _stay(self, ch: _Live, index: int) -> None:
        """An agent about to log out stays on (the roster needs it again)."""
        agent = ch.pool[index]
        agent.away = _STAY
        ch.order.appendleft((index, agent.shift))  # still the longest on shift
        if agent.mode == _ON and not agent.break_planned:
            self._plan_break(ch, index)
        if agent.mode == _ON and agent.engaged:
            ch.partial.extend([index] * (ch.concurrency - agent.engaged))
            self._route(ch)

    def _withdraw(self, ch: _Live, index: int, away: int) -> None:
        """The agent takes no new contact and leaves (break or offline) once it is idle."""
        agent = ch.pool[index]
        if agent.mode == _ON and agent.away == _STAY:
            if agent.engaged == 0:
                ch.idle.remove(index)
            for _ in range(agent.engaged and ch.concurrency - agent.engaged):
                ch.partial.remove(index)
        agent.away = away
        if agent.mode == _ON and agent.engaged == 0:
            self._leave(ch, index)

    def _leave(self, ch: _Live, index: int) -> None:
        agent = ch.pool[index]
        if agent.away == _TO_BREAK:
            agent.mode, agent.away = _BREAK, _STAY
            self._agent_state(ch, agent, "break")
            when = self.now + self._rng.uniform(*BREAK_LENGTH)
            self._at(when, partial(self._break_end, ch, index))
            return
        agent.mode, agent.away = _OFF, _STAY
        agent.shift += 1
        self._agent_state(ch, agent, "offline")
        ch.offline.append(index)

    def _break_due(self, ch: _Live, index: int, shift: int) -> None:
        """Take a break if the others still cover the roster's need, else ask again later."""
        agent = ch.pool[index]
        if agent.shift != shift:
            return
        agent.break_planned = False
        if agent.mode != _ON or agent.away != _STAY:
            return
        working = sum(a.mode == _ON and a.away == _STAY for a in ch.pool)
        if working - 1 >= ch.required:
            self._withdraw(ch, index, _TO_BREAK)
        else:
            agent.break_planned = True
            self._at(
                self.now + self._rng.uniform(120.0, 300.0),
                partial(self._break_due, ch, index, shift),
            )

    def _break_end(self, ch: _Live, index: int) -> None:
        agent = ch.pool[index]
        if agent.away == _TO_OFFLINE:
            self._leave(ch, index)
            return
        agent.mode = _ON
        self._agent_state(ch, agent, "available")
        ch.idle.append(index)
        if not agent.break_planned:
            self._plan_break(ch, index)
        self._route(ch)

    # ------------------------------------------------------------------ self-service

    def _bot_session(self, bot: _Bot) -> None:
        rng = self._rng
        failing = self._incidents and in_bot_failure(self.now - self._start)
        outcome = rng.choices(BOT_OUTCOMES, weights=BOT_FAILING if failing else BOT_NORMAL)[0]
        queue = self._pick(bot.queues, bot.weights)
        fields: dict[str, object] = {"session_id": self._item_id("s"), "outcome": outcome}
        if outcome == "escalated" and bot.escalate_to is not None:
            # The hand-over queues a live contact first, so the session's contact_id is known.
            ch = self._live[bot.escalate_to]
            cid = self._item_id("c")
            self._enqueue(ch, cid, self._pick(ch.queues, ch.weights))
            fields["contact_id"] = cid
        self._emit("bot.session_ended", bot.name, queue, **fields)
        if outcome == "contained" and rng.random() < BOT_CSAT_SHARE:
            rating = self._rating(unhappy=False)
            survey = {"survey": "csat", "score": rating}
            self._at(
                self.now + rng.uniform(5.0, 30.0),
                partial(self._emit, "survey.answered", bot.name, queue, **survey),
            )
        if rng.random() < BOT_SENTIMENT_SHARE:
            mean = {"contained": 0.3, "escalated": -0.1, "abandoned": -0.3}[outcome]
            when = self.now + rng.uniform(1.0, 10.0)
            score = self._sentiment(mean, when)
            self._at(when, partial(self._emit, "sentiment.scored", bot.name, queue, score=score))

    # ------------------------------------------------------------------ tickets

    def _new_ticket(self, desk: _TicketDesk) -> None:
        rng = self._rng
        tid = self._item_id("t")
        queue = self._pick(desk.queues, desk.weights)
        tags = rng.sample(_TICKET_TAGS, rng.choice((0, 1, 1, 2)))
        complaint = rng.random() < COMPLAINT_TAG_SHARE
        if complaint:
            # The category tag lets ``ingest.complaint_categories`` classify the complaint.
            tags = ["complaint", self._category(), *(tag for tag in tags if tag != "billing")]
        priority = rng.choices(_PRIORITIES, weights=_PRIORITY_WEIGHTS)[0]
        self._emit("ticket.created", desk.name, queue, ticket_id=tid, priority=priority, tags=tags)
        steps = self._plan_ticket(desk, priority, complaint)
        steps.sort(key=lambda step: step[0])  # stable: same-time steps keep their causal order
        for when, kind, fields in steps:
            self._at(when, partial(self._emit, kind, desk.name, queue, ticket_id=tid, **fields))

    def _plan_ticket(self, desk: _TicketDesk, priority: str, complaint: bool) -> list[Step]:
        """The whole life of a new ticket: replies, waits on the customer or a third party,
        solve, maybe a reopen, surveys and sentiment. Same-time steps are in causal order."""
        rng, created = self._rng, self.now
        pace = _PRIORITY_PACE[priority]
        mood = -0.5 if complaint else 0.1
        steps: list[Step] = []
        self._maybe_sentiment(steps, created + rng.uniform(1.0, 10.0), mood)
        respond = created + self._lognormal(0.35 * desk.fr_basis * pace, 0.8, floor=30.0)
        late = desk.first_response is not None and respond - created > desk.first_response
        steps.append((respond, "ticket.responded", self._agent(desk)))
        if rng.random() < FIRST_CONTACT_RESOLUTION:
            last = respond
            solved = respond + rng.uniform(60.0, 900.0)
        else:
            last = self._conversation(steps, desk, respond, pace, mood - 0.3 * late)
            floor = last + rng.uniform(60.0, 900.0)
            solved = max(floor, created + self._lognormal(0.12 * desk.res_basis, 1.1, 0))
        if rng.random() < PRIORITY_CHANGE_SHARE:
            new = (_PRIORITY_DOWN if rng.random() < 0.2 else _PRIORITY_UP)[priority]
            when = created + rng.uniform(0.05, 0.95) * (last - created)
            steps.append((when, "ticket.priority_changed", {"priority": new}))
        steps.append((solved, "ticket.solved", {}))
        reopened = rng.random() < REOPEN_SHARE
        if reopened:
            reopen = solved + self._lognormal(3600.0, 0.7, floor=60.0)
            again = reopen + self._lognormal(0.35 * desk.fr_basis * pace, 0.8, floor=30.0)
            solved = again + self._lognormal(0.2 * desk.res_basis, 0.8, floor=60.0)
            steps += [
                (reopen, "ticket.reopened", {}),
                (again, "ticket.responded", self._agent(desk)),
                (solved, "ticket.solved", {}),
            ]
        kind = self._survey_kind(TICKET_SURVEYS)
        if kind is not None:
            steps.append(
                (solved + self._lognormal(900.0, 1.0, 10.0), *self._survey(kind, late or reopened))
            )
        return steps

    def _conversation(
        self, steps: list[Step], desk: _TicketDesk, t: float, pace: float, mood: float
    ) -> float:
        """One to three rounds after the first reply, each waiting on the customer (``pending``,
        then ``ticket.customer_replied`` and ``open``) or on a third party (``on_hold``), then
        an agent reply. Returns the time of the last agent reply."""
        rng = self._rng
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            if rng.random() < ON_HOLD_SHARE:
                steps.append((t, "ticket.status_changed", {"status": "on_hold"}))
                t += self._lognormal(1800.0, 0.8, floor=60.0)
                steps.append((t, "ticket.status_changed", {"status": "open"}))
            else:
                steps.append((t, "ticket.status_changed", {"status": "pending"}))
                t += self._lognormal(min(0.02 * desk.res_basis, 3600.0), 1.0, floor=60.0)
                steps.append((t, "ticket.customer_replied", {}))
                steps.append((t, "ticket.status_changed", {"status": "open"}))
                self._maybe_sentiment(steps, t + rng.uniform(1.0, 10.0), mood)
            t += self._lognormal(0.35 * desk.nr_basis * pace, 0.8, floor=30.0)
            steps.append((t, "ticket.responded", self._agent(desk)))
        return t

    def _maybe_sentiment(self, steps: list[Step], when: float, mean: float) -> None:
        if self._rng.random() < SENTIMENT_SHARE:
            steps.append((when, "sentiment.scored", {"score": self._sentiment(mean, when)}))

    def _agent(self, desk: _TicketDesk) -> dict[str, object]:
        return {"agent_id": f"agent-{desk.name}-{self._rng.randrange(TICKET_TEAM) + 1:03d}"}

    # ------------------------------------------------------------------ complaints

    def _complaint(
        self, names: list[str], weights: list[float], channels: Mapping[str, ChannelSettings]
    ) -> None:
        rng = self._rng
        name = rng.choices(names, weights=weights)[0]
        queues = channels[name].queues
        queue = self._pick(queues, _cumulative(len(queues)))
        self._emit("complaint.received", name, queue, category=self._category())

    def _category(self) -> str:
        return self._rng.choices(COMPLAINT_CATEGORIES, weights=_CATEGORY_WEIGHTS)[0]
