"""Seeded, deterministic seasonal contact-center traffic with labelled incidents.

Live channels are M/M/c+M queues: Poisson arrivals whose rate follows an hour-of-week profile,
one FIFO line per channel, exponential handle times, a staffed pool sized per hour with
Erlang C, and exponential customer patience (so abandons come from waiting, as in life). An
answer happens the moment a slot is free (no ring time, no wrap-up), so the textbook formulas
apply exactly at a constant rate (the test checks them). Email has tickets with
first-response and resolution clocks. Every channel gets complaints as a seasonal Poisson
stream, and rated contacts and tickets give CSAT ratings.

Incidents change one mechanism of one channel during ``[start, end)``:

| kind | mechanism |
|---|---|
| ``sl_collapse`` | staffed slots times ``factor`` (agents leave as they finish a contact) |
| ``backlog_growth`` | arrival rate times ``factor`` (arrivals outpace answers) |
| ``complaint_spike_4x`` / ``_8x`` | complaint rate times ``factor`` |
| ``csat_drop`` | share of satisfied (4-5) ratings set to ``factor`` |
| ``tickets_piling`` | first responses due in the window are held to its end (+ up to 1 h) |

One ``random.Random(seed)`` drives everything and the heap breaks ties by insertion order,
so a seed gives the same bytes every time.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec

HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
MONDAY = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
"""Default start: a Monday 00:00 UTC, so hour-of-week 0 is Monday midnight."""

# Arrival-rate multiplier per hour of a weekday (peak 1.0), and per day of the week.
WEEKDAY_HOURS = (
    0.08, 0.06, 0.05, 0.05, 0.06, 0.1, 0.2, 0.45, 0.8, 1.0, 1.0, 0.95,
    0.85, 0.9, 1.0, 0.95, 0.85, 0.7, 0.5, 0.35, 0.3, 0.25, 0.18, 0.12,
)  # fmt: skip
DAY_FACTORS = (1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.3)
"""Monday .. Sunday."""

CATEGORIES = ("billing", "service", "product")
CATEGORY_WEIGHTS = (0.45, 0.35, 0.2)


def seasonal(t: float) -> float:
    """The hour-of-week multiplier of the arrival rate at epoch second ``t`` (UTC)."""
    how = int(((t - MONDAY) % WEEK) // HOUR)
    day, hour = divmod(how, 24)
    return WEEKDAY_HOURS[hour] * DAY_FACTORS[day]


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """One live channel; ``answer_seconds`` must match the channel's config."""

    name: str
    peak_per_minute: float
    handle_mean: float
    answer_seconds: float
    patience_mean: float
    """Mean customer patience (exponential); ``math.inf``: nobody abandons."""
    queues: tuple[str, ...]
    staffing_sl: float = 0.55
    """Each hour gets the fewest slots whose Erlang C service level reaches this ..."""
    staffing_abandon: float = 0.12
    """... and whose Erlang A abandon probability is at most this."""
    fixed_slots: int | None = None
    """Use this many slots at every hour instead of the Erlang C schedule."""
    complaints_peak_per_hour: float = 6.0
    survey_share: float = 0.2
    satisfied_share: float = 0.85


@dataclass(frozen=True, slots=True)
class DeskSpec:
    """A ticket channel (email): a 24/7 team, lognormal response and resolution times."""

    name: str
    peak_per_hour: float
    first_response_median: float
    first_response_sigma: float
    resolution_median: float
    resolution_sigma: float
    complaints_peak_per_hour: float = 3.0
    rating_share: float = 0.3
    satisfied_share: float = 0.85


@dataclass(frozen=True, slots=True)
class Incident:
    kind: str
    channel: str
    start: float
    end: float
    factor: float


def default_live() -> list[LiveSpec]:
    """Voice (T = 20 s) and chat (T = 60 s), as the default config declares them."""
    return [
        LiveSpec("voice", 4.0, 240.0, 20.0, 60.0, ("billing", "tech"), complaints_peak_per_hour=10),
        LiveSpec("chat", 3.0, 360.0, 60.0, 150.0, ("sales", "support"), complaints_peak_per_hour=8),
    ]


def default_desks() -> list[DeskSpec]:
    """Email: first response 1 h and resolution 24 h targets in the default config."""
    return [DeskSpec("email", 30.0, 900.0, 0.6, 3 * HOUR, 0.8, complaints_peak_per_hour=4)]


# ---------------------------------------------------------------------- queueing formulas


def erlang_c(slots: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c (``load`` = arrival rate x mean handle)."""
    if slots <= load:
        return 1.0
    blocking = 1.0
    for k in range(1, slots + 1):
        blocking = load * blocking / (k + load * blocking)
    return slots * blocking / (slots - load * (1 - blocking))


def erlang_c_service_level(slots: int, rate: float, handle: float, answer: float) -> float:
    """P(wait <= answer) in M/M/c without abandons."""
    load = rate * handle
    if slots <= load:
        return 0.0
    return 1 - erlang_c(slots, load) * math.exp(-(slots - load) / handle * answer)


def erlang_a_abandon(slots: int, rate: float, handle: float, patience: float) -> float:
    """P(abandon) in M/M/c+M (Erlang A) from its birth-death chain: theta E[queue] / rate."""
    mu, theta = 1 / handle, 1 / patience
    weight, total, queue = 1.0, 1.0, 0.0
    n = 0
    while True:
        n += 1
        weight *= rate / (min(n, slots) * mu + max(n - slots, 0) * theta)
        total += weight
        queue += max(n - slots, 0) * weight
        if n > slots and weight < 1e-15 * total:
            break
    return theta * (queue / total) / rate


def slots_for(rate: float, spec: LiveSpec) -> int:
    """The fewest slots meeting ``spec.staffing_sl`` (Erlang C) and ``spec.staffing_abandon``
    (Erlang A; not checked when nobody abandons)."""
    if spec.fixed_slots is not None:
        return spec.fixed_slots
    slots = max(1, math.floor(rate * spec.handle_mean) + 1)
    while erlang_c_service_level(
        slots, rate, spec.handle_mean, spec.answer_seconds
    ) < spec.staffing_sl or (
        math.isfinite(spec.patience_mean)
        and erlang_a_abandon(slots, rate, spec.handle_mean, spec.patience_mean)
        > spec.staffing_abandon
    ):
        slots += 1
    return slots


# ---------------------------------------------------------------------- the simulation


@dataclass(slots=True)
class _Contact:
    cid: str
    queue: str
    queued: float
    waiting: bool = True


@dataclass(slots=True)
class _Pool:
    spec: LiveSpec
    line: deque[_Contact] = field(default_factory=deque)
    free: int = 0
    busy: int = 0
    target: int = 0


Action = Callable[[], None]


class Generator:
    """The event stream of ``[start, end)``: :meth:`run` yields ``(ts, json bytes)`` in order."""

    def __init__(
        self,
        seed: int,
        start: float,
        end: float,
        *,
        live: Sequence[LiveSpec] = (),
        desks: Sequence[DeskSpec] = (),
        incidents: Sequence[Incident] = (),
        profile: Callable[[float], float] = seasonal,
    ) -> None:
        self._rng = random.Random(seed)  # a reproducible simulation, not secrets
        self._tag = f"b{seed}"
        self._start, self._end = start, end
        self._profile = profile
        self._incidents = tuple(incidents)
        self._heap: list[tuple[float, int, Action]] = []
        self._seq = 0
        self._ids = 0
        self._out: list[tuple[float, bytes]] = []
        self.now = start
        self._pools = [_Pool(spec) for spec in live]
        self._desks = list(desks)
        self._slot_cache: dict[tuple[str, float], int] = {}
        for pool in self._pools:
            self._restaff(pool)
            self._at(self._next_hour(start), partial(self._hourly, pool))
            self._next_arrival(pool)
            self._next_complaint(pool.spec.name, pool.spec.complaints_peak_per_hour, pool.spec)
            for inc in self._incidents:
                if inc.kind == "sl_collapse" and inc.channel == pool.spec.name:
                    self._at(inc.start, partial(self._restaff, pool))
                    self._at(inc.end, partial(self._restaff, pool))
        for desk in self._desks:
            self._next_ticket(desk)
            self._next_complaint(desk.name, desk.complaints_peak_per_hour, desk)

    # ------------------------------------------------------------------ plumbing

    def run(self) -> Iterator[tuple[float, bytes]]:
        heap, out = self._heap, self._out
        while heap and heap[0][0] < self._end:
            when, _, action = heapq.heappop(heap)
            self.now = when
            action()
            if out:
                yield from out
                out.clear()

    def _at(self, when: float, action: Action) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (round(when, 3), self._seq, action))

    def _emit(self, kind: str, channel: str, queue: str, **fields: object) -> None:
        self._ids += 1
        stamp = datetime.fromtimestamp(self.now, UTC).isoformat(timespec="milliseconds")
        event = {
            "event_id": f"{self._tag}-{self._ids}",
            "type": kind,
            "ts": stamp.replace("+00:00", "Z"),
            "channel": channel,
            "queue": queue,
            **fields,
        }
        self._out.append((self.now, msgspec.json.encode(event)))

    def _item(self, prefix: str) -> str:
        self._ids += 1
        return f"{self._tag}-{prefix}{self._ids}"

    @staticmethod
    def _next_hour(t: float) -> float:
        return (math.floor(t / HOUR) + 1) * HOUR

    def _factor(self, kind: str, channel: str, t: float) -> float | None:
        for inc in self._incidents:
            if inc.kind == kind and inc.channel == channel and inc.start <= t < inc.end:
                return inc.factor
        return None

    def _rate_factor(self, kind: str, channel: str, t: float) -> float:
        factor = self._factor(kind, channel, t)
        return 1.0 if factor is None else factor

    def _poisson_after(self, t: float, rate: Callable[[float], float]) -> float:
        """Next event of a Poisson process whose rate is constant within each minute."""
        budget = self._rng.expovariate(1.0)
        while t < self._end:
            edge = (math.floor(t / 60) + 1) * 60
            r = rate(t)
            if r * (edge - t) >= budget:
                return t + budget / r
            budget -= r * (edge - t)
            t = edge
        return math.inf

    # ------------------------------------------------------------------ live channels

    def arrival_rate(self, spec: LiveSpec, t: float) -> float:
        """Arrivals per second at ``t``, incidents included."""
        base = spec.peak_per_minute / 60 * self._profile(t)
        return base * self._rate_factor("backlog_growth", spec.name, t)

    def _slots(self, spec: LiveSpec, t: float) -> int:
        rate = spec.peak_per_minute / 60 * self._profile(t)
        key = (spec.name, rate)
        if key not in self._slot_cache:
            self._slot_cache[key] = slots_for(rate, spec)
        slots = self._slot_cache[key]
        factor = self._factor("sl_collapse", spec.name, t)
        return slots if factor is None else max(1, round(slots * factor))

    def _hourly(self, pool: _Pool) -> None:
        self._restaff(pool)
        self._at(self.now + HOUR, partial(self._hourly, pool))

    def _restaff(self, pool: _Pool) -> None:
        """New staffing target: more slots start at once; fewer leave as they finish."""
        pool.target = self._slots(pool.spec, self.now)
        staffed = pool.free + pool.busy
        if pool.target > staffed:
            pool.free += pool.target - staffed
            self._route(pool)
        elif pool.target < staffed:
            pool.free -= min(pool.free, staffed - pool.target)

    def _next_arrival(self, pool: _Pool) -> None:
        when = self._poisson_after(self.now, partial(self.arrival_rate, pool.spec))
        if when < self._end:
            self._at(when, partial(self._arrive, pool))

    def _arrive(self, pool: _Pool) -> None:
        spec, rng = pool.spec, self._rng
        queue = spec.queues[0] if rng.random() < 0.6 else spec.queues[-1]
        contact = _Contact(self._item("c"), queue, self.now)
        self._emit("contact.queued", spec.name, queue, contact_id=contact.cid)
        pool.line.append(contact)
        if math.isfinite(spec.patience_mean):
            patience = rng.expovariate(1 / spec.patience_mean)
            self._at(self.now + patience, partial(self._give_up, pool, contact))
        self._route(pool)
        self._next_arrival(pool)

    def _give_up(self, pool: _Pool, contact: _Contact) -> None:
        if contact.waiting:
            contact.waiting = False
            self._emit("contact.abandoned", pool.spec.name, contact.queue, contact_id=contact.cid)

    def _route(self, pool: _Pool) -> None:
        """A free slot takes the longest-waiting contact and answers it at once (FIFO)."""
        while pool.free and pool.line:
            contact = pool.line.popleft()
            if not contact.waiting:
                continue  # abandoned while in line
            contact.waiting = False
            pool.free -= 1
            pool.busy += 1
            spec = pool.spec
            self._emit("contact.answered", spec.name, contact.queue, contact_id=contact.cid)
            handle = self._rng.expovariate(1 / spec.handle_mean)
            self._at(self.now + handle, partial(self._end_contact, pool, contact))

    def _end_contact(self, pool: _Pool, contact: _Contact) -> None:
        spec, rng = pool.spec, self._rng
        self._emit("contact.ended", spec.name, contact.queue, contact_id=contact.cid)
        pool.busy -= 1
        if pool.busy + pool.free < pool.target:
            pool.free += 1
            self._route(pool)
        if rng.random() < spec.survey_share:
            when = self.now + rng.uniform(20.0, 120.0)
            self._at(when, partial(self._rate, spec.name, contact.queue, spec.satisfied_share, ""))

    def _rate(self, channel: str, queue: str, satisfied: float, ticket: str) -> None:
        factor = self._factor("csat_drop", channel, self.now)
        share = satisfied if factor is None else factor
        rng = self._rng
        rating = rng.choice((4, 5, 5)) if rng.random() < share else rng.choice((1, 2, 3))
        fields: dict[str, object] = {"rating": rating}
        if ticket:
            fields["ticket_id"] = ticket
        self._emit("ticket.rated", channel, queue, **fields)

    # ------------------------------------------------------------------ complaints

    def _next_complaint(self, channel: str, peak_per_hour: float, spec: object) -> None:
        def rate(t: float) -> float:
            base = peak_per_hour / HOUR * self._profile(t)
            for kind in ("complaint_spike_4x", "complaint_spike_8x"):
                base *= self._rate_factor(kind, channel, t)
            return base

        when = self._poisson_after(self.now, rate)
        if when < self._end:
            self._at(when, partial(self._complaint, channel, peak_per_hour, spec))

    def _complaint(self, channel: str, peak_per_hour: float, spec: object) -> None:
        queues = spec.queues if isinstance(spec, LiveSpec) else ("default",)
        category = self._rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0]
        self._emit("complaint.received", channel, queues[0], category=category)
        self._next_complaint(channel, peak_per_hour, spec)

    # ------------------------------------------------------------------ tickets

    def ticket_rate(self, desk: DeskSpec, t: float) -> float:
        return desk.peak_per_hour / HOUR * self._profile(t)

    def _next_ticket(self, desk: DeskSpec) -> None:
        when = self._poisson_after(self.now, partial(self.ticket_rate, desk))
        if when < self._end:
            self._at(when, partial(self._ticket, desk))

    def _lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self._rng.gauss())

    def _ticket(self, desk: DeskSpec) -> None:
        rng, created = self._rng, self.now
        tid = self._item("t")
        self._emit("ticket.created", desk.name, "default", ticket_id=tid, priority="normal")
        respond = created + max(
            30.0, self._lognormal(desk.first_response_median, desk.first_response_sigma)
        )
        for inc in self._incidents:
            piling = inc.kind == "tickets_piling" and inc.channel == desk.name
            if piling and inc.start <= respond < inc.end:
                respond = inc.end + rng.uniform(0.0, HOUR)
        solved = max(
            respond + rng.uniform(60.0, 600.0),
            created + self._lognormal(desk.resolution_median, desk.resolution_sigma),
        )
        emit = partial(self._emit, ticket_id=tid)
        self._at(respond, partial(emit, "ticket.responded", desk.name, "default"))
        self._at(solved, partial(emit, "ticket.solved", desk.name, "default"))
        if rng.random() < desk.rating_share:
            when = solved + rng.uniform(60.0, 1800.0)
            self._at(when, partial(self._rate, desk.name, "default", desk.satisfied_share, tid))
        self._next_ticket(desk)


# ---------------------------------------------------------------------- incidents, files


DURATIONS = {
    "sl_collapse": 30 * 60.0,
    "backlog_growth": 45 * 60.0,
    "complaint_spike_4x": 30 * 60.0,
    "complaint_spike_8x": 30 * 60.0,
    "csat_drop": 60 * 60.0,
    "tickets_piling": 2 * HOUR,
}
FACTORS = {
    "sl_collapse": 0.4,
    "backlog_growth": 1.4,
    "complaint_spike_4x": 4.0,
    "complaint_spike_8x": 8.0,
    "csat_drop": 0.5,
    "tickets_piling": 0.0,
}
PLANS = {
    "voice": (
        "sl_collapse",
        "backlog_growth",
        "complaint_spike_8x",
        "complaint_spike_4x",
        "csat_drop",
    ),
    "chat": (
        "backlog_growth",
        "sl_collapse",
        "complaint_spike_4x",
        "csat_drop",
        "complaint_spike_8x",
    ),
    "email": ("tickets_piling", "complaint_spike_8x"),
}
"""Per channel, the incidents in the order they are scheduled on the incident day."""


def write(
    path: Path,
    seed: int,
    span: tuple[float, float],
    *,
    live: Sequence[LiveSpec],
    desks: Sequence[DeskSpec],
    incidents: Sequence[Incident],
    generator_class: type[Generator] = Generator,
) -> int:
    """Write the events of ``span`` as JSON Lines, from ``generator_class`` (a subclass adds
    events, e.g. ``traffic_agents.AgentGenerator``); return how many."""
    generator = generator_class(seed, *span, live=live, desks=desks, incidents=incidents)
    n = 0
    with path.open("wb") as f:
        for _, line in generator.run():
            f.write(line + b"\n")
            n += 1
    return n


def write_labels(path: Path, incidents: Sequence[Incident]) -> None:
    with path.open("wb") as f:
        for inc in incidents:
            f.write(msgspec.json.encode(inc) + b"\n")


def read_labels(path: Path) -> list[Incident]:
    with path.open("rb") as f:
        return [msgspec.json.decode(line, type=Incident) for line in f if line.strip()]
