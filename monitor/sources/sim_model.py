"""The discrete-event contact center behind the simulator source: one heap of happenings.

A happening runs at its time, may emit events stamped with that time, and schedules later
happenings. Output is therefore in time order by construction, and every outcome follows its cause
(answered after queued, solved after created). One seeded ``random.Random`` drives everything and
ties in the heap break by insertion order, so a seed and a start time always give the same bytes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import msgspec

from monitor.config import ChannelSettings, SimulatorSettings

DAY_SECONDS = 7200.0
"""One compressed "day": the intraday curve (trough at start, peak 1 h later) repeats every 2 h."""
CURVE_AMPLITUDE = 0.25
PEAK_OCCUPANCY = 0.9
"""Staff is sized (by capping handle time) to run at this occupancy at the daily peak."""
WRAP_SHARE = 0.1
"""After-contact work, as a share of the mean handle time, before an agent takes the next one."""
INCIDENT_PERIOD = 3600.0
SURGE_START, SURGE_LENGTH, SURGE_FACTOR = 300.0, 600.0, 3.5
SPIKE_START, SPIKE_LENGTH, SPIKE_FACTOR = 900.0, 300.0, 7.0
TICKETS_PER_CONTACT = 0.2
COMPLAINTS_PER_CONTACT = 1 / 60
SHORT_ABANDON_SHARE = 0.04
SURVEY_SHARE = 0.1
COMPLAINT_TAG_SHARE = 0.03
FIRST_CONTACT_RESOLUTION = 0.35
REOPEN_SHARE = 0.05
TICKET_RATING_SHARE = 0.3
TICKET_TEAM = 6
DEFAULT_FIRST_RESPONSE = 4 * 3600.0
COMPLAINT_CATEGORIES = ("billing", "service", "product")
_CATEGORY_WEIGHTS = (0.45, 0.35, 0.2)
_TICKET_TAGS = ("billing", "account", "delivery", "bug", "refund", "password")
_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_WEIGHTS = (0.2, 0.6, 0.15, 0.05)
_HAPPY = (0.03, 0.04, 0.1, 0.3, 0.53)
_UNHAPPY = (0.2, 0.15, 0.2, 0.25, 0.2)
_RATINGS = (1, 2, 3, 4, 5)
_WAITING, _ASSIGNED, _GONE = range(3)

Action = Callable[[], None]


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
class _Live:
    """One live channel: its arrival rate, its agents and the FIFO line of waiting contacts."""

    name: str
    rate: float
    queues: tuple[str, ...]
    weights: list[float]
    answer: float
    short_abandon: float
    handle: float
    patience: float
    agents: list[str]
    free: deque[int]
    line: deque[_Contact] = field(default_factory=deque)
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class _TicketDesk:
    """One ticket channel: arrival rate and the targets its response times are drawn around."""

    name: str
    rate: float
    queues: tuple[str, ...]
    weights: list[float]
    first_response: float | None
    fr_basis: float
    res_basis: float


def _live_channels(channels: Mapping[str, ChannelSettings], sim: SimulatorSettings) -> list[_Live]:
    names = [name for name, ch in channels.items() if ch.is_live]
    if not names:
        return []
    rate = sim.arrivals_per_minute / 60 / len(names)
    profiles = [profile_for(name) for name in names]
    staff = split_agents(sim.agents, [rate * p.handle / p.concurrency for p in profiles])
    out = []
    for name, profile, agents in zip(names, profiles, staff, strict=True):
        ch = channels[name]
        assert ch.answer_seconds is not None
        peak = rate * (1 + CURVE_AMPLITUDE) * (1 + WRAP_SHARE)
        handle = min(profile.handle, PEAK_OCCUPANCY * agents * profile.concurrency / peak)
        slots = [i for _ in range(profile.concurrency) for i in range(agents)]
        out.append(
            _Live(
                name=name,
                rate=rate,
                queues=ch.queues,
                weights=_cumulative(len(ch.queues)),
                answer=ch.answer_seconds,
                short_abandon=ch.short_abandon_seconds,
                handle=handle,
                patience=max(60.0, 4 * ch.answer_seconds),
                agents=[f"{name}-agent-{i + 1:03d}" for i in range(agents)],
                free=deque(slots),
            )
        )
    return out


def _ticket_desks(
    channels: Mapping[str, ChannelSettings], sim: SimulatorSettings
) -> list[_TicketDesk]:
    names = [
        name
        for name, ch in channels.items()
        if not ch.is_live or ch.first_response_seconds or ch.resolution_seconds
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
        self._live = _live_channels(channels, sim)
        self._desks = _ticket_desks(channels, sim)
        self._complaint_rate = sim.arrivals_per_minute / 60 * COMPLAINTS_PER_CONTACT
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
        """Contact/ticket ids carry the start time, so a restarted simulator never reuses one."""
        self._items += 1
        return f"{prefix}-{self._tag}-{self._items}"

    def _pick(self, queues: tuple[str, ...], weights: list[float]) -> str:
        return queues[0] if len(queues) == 1 else self._rng.choices(queues, cum_weights=weights)[0]

    def _lognormal(self, median: float, sigma: float, floor: float) -> float:
        return max(floor, median * math.exp(sigma * self._rng.gauss()))

    def _rating(self, unhappy: bool) -> int:
        return self._rng.choices(_RATINGS, weights=_UNHAPPY if unhappy else _HAPPY)[0]

    # ------------------------------------------------------------------ arrivals

    def _start_arrivals(self, channels: Mapping[str, ChannelSettings]) -> None:
        surge = SURGE_FACTOR if self._incidents else 1.0
        for i, ch in enumerate(self._live):
            rate = partial(self._live_rate, i)
            self._poisson(rate, ch.rate * (1 + CURVE_AMPLITUDE) * surge, partial(self._arrive, ch))
        for desk in self._desks:
            rate = partial(self._curve_rate, desk.rate)
            self._poisson(rate, desk.rate * (1 + CURVE_AMPLITUDE), partial(self._new_ticket, desk))
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
        c = _Contact(self._item_id("c"), self._pick(ch.queues, ch.weights), self.now)
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
        """Longest-idle free agent slot takes the longest-waiting contact (FIFO)."""
        while ch.waiting and ch.free:
            c = ch.line.popleft()
            if c.state != _WAITING:
                continue  # abandoned while in line: dropped lazily here
            c.state = _ASSIGNED
            c.agent = ch.free.popleft()
            ch.waiting -= 1
            self._at(self.now + self._rng.uniform(0.5, 3.0), partial(self._answer, ch, c))

    def _answer(self, ch: _Live, c: _Contact) -> None:
        c.late = self.now - c.queued > ch.answer
        self._emit(
            "contact.answered", ch.name, c.queue, contact_id=c.cid, agent_id=ch.agents[c.agent]
        )
        handle = self._lognormal(ch.handle * math.exp(-0.125), 0.5, floor=2.0)  # mean ~ handle
        self._at(self.now + handle, partial(self._end, ch, c))

    def _end(self, ch: _Live, c: _Contact) -> None:
        self._emit("contact.ended", ch.name, c.queue, contact_id=c.cid)
        rng = self._rng
        if rng.random() < SURVEY_SHARE:
            rating = self._rating(unhappy=c.late)
            self._at(
                self.now + rng.uniform(20.0, 120.0),
                partial(self._emit, "ticket.rated", ch.name, c.queue, rating=rating),
            )
        wrap = rng.uniform(0.5, 1.5) * WRAP_SHARE * ch.handle
        self._at(self.now + wrap, partial(self._free, ch, c.agent))

    def _free(self, ch: _Live, agent: int) -> None:
        ch.free.append(agent)
        self._route(ch)

    # ------------------------------------------------------------------ tickets

    def _new_ticket(self, desk: _TicketDesk) -> None:
        rng = self._rng
        tid = self._item_id("t")
        queue = self._pick(desk.queues, desk.weights)
        tags = rng.sample(_TICKET_TAGS, rng.choice((0, 1, 1, 2)))
        if rng.random() < COMPLAINT_TAG_SHARE:
            # The category tag lets ``ingest.complaint_categories`` classify the complaint.
            tags = ["complaint", self._category(), *(tag for tag in tags if tag != "billing")]
        priority = rng.choices(_PRIORITIES, weights=_PRIORITY_WEIGHTS)[0]
        self._emit("ticket.created", desk.name, queue, ticket_id=tid, priority=priority, tags=tags)
        for when, kind, fields in self._plan_ticket(desk):
            self._at(when, partial(self._emit, kind, desk.name, queue, ticket_id=tid, **fields))

    def _plan_ticket(self, desk: _TicketDesk) -> list[tuple[float, str, dict[str, object]]]:
        """The whole life of a new ticket, in order: reply, solve, maybe reopen, maybe a rating."""
        rng, created = self._rng, self.now
        respond = created + self._lognormal(0.35 * desk.fr_basis, 0.8, floor=30.0)
        late = desk.first_response is not None and respond - created > desk.first_response
        if rng.random() < FIRST_CONTACT_RESOLUTION:
            solved = respond + rng.uniform(60.0, 900.0)
        else:
            solved = max(respond + 300.0, created + self._lognormal(0.3 * desk.res_basis, 0.9, 0))
        steps = [(respond, "ticket.responded", self._agent(desk)), (solved, "ticket.solved", {})]
        reopened = rng.random() < REOPEN_SHARE
        if reopened:
            reopen = solved + self._lognormal(3600.0, 0.7, floor=60.0)
            again = reopen + self._lognormal(0.35 * desk.fr_basis, 0.8, floor=30.0)
            solved = again + self._lognormal(0.2 * desk.res_basis, 0.8, floor=60.0)
            steps += [
                (reopen, "ticket.reopened", {}),
                (again, "ticket.responded", self._agent(desk)),
                (solved, "ticket.solved", {}),
            ]
        if rng.random() < TICKET_RATING_SHARE:
            rating = self._rating(unhappy=late or reopened)
            steps.append(
                (solved + self._lognormal(900.0, 1.0, 10.0), "ticket.rated", {"rating": rating})
            )
        return steps

    def _agent(self, desk: _TicketDesk) -> dict[str, object]:
        return {"agent_id": f"{desk.name}-agent-{self._rng.randrange(TICKET_TEAM) + 1:03d}"}

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
