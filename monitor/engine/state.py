"""Per channel and per queue state: the counters, gauges and histograms the metrics show."""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.clocks import ALWAYS, Calendar, Clock
from support_monitor.monitor.engine.histogram import (
    FIRST_RESPONSE_BUCKETS,
    HANDLE_BUCKETS,
    RESOLUTION_BUCKETS,
    WAIT_BUCKETS,
    Histogram,
    bucket_bounds,
)
from support_monitor.monitor.engine.voice import VoiceCounts
from support_monitor.monitor.engine.windows import SlidingWindows


class Contact(msgspec.Struct, gc=False):
    """A live contact from ``queued`` until ``ended`` (or abandoned).

    An untracked msgspec struct: millions of these live for minutes, and the cyclic GC walking
    them cost ~30% of throughput (measured). It holds no container, so it needs no tracking;
    ``q`` points back at its queue, whose lifetime is the engine's."""

    q: QueueState
    contact_id: str
    queued_ts: float
    answered_ts: float | None = None
    breached: bool = False
    agent_id: str | None = None
    """The agent that answered (``contact.answered``'s ``agent_id``), for the workforce."""


class Ticket(msgspec.Struct, gc=False):
    """A ticket from ``created``; kept after ``solved`` for reopen and late events."""

    q: QueueState
    created_ts: float
    priority: str
    clocks: tuple[Clock | None, Clock | None, Clock | None]
    """First response, next reply (``None`` until a customer reply starts one), resolution. A
    tuple, replaced when a clock starts: the garbage collector stops tracking a tuple of
    untracked objects, so open tickets add no tracked object to a full collection."""
    status: str = "open"
    responses: int = 0
    """Agent responses so far (``ticket.responded`` events)."""
    solved_ts: float | None = None
    reopened: bool = False
    paused: bool = False
    """Counted in the queue's ``tickets_paused`` now."""


PRIORITIES = ("low", "normal", "high", "urgent")


class QueueState:
    """Counters and live gauges of one (channel, queue) series."""

    __slots__ = (
        "abandoned",
        "abandoned_in_sla",
        "abandoned_short",
        "answered",
        "answered_in_sla",
        "at_risk",
        "awaiting_first_response",
        "below_t",
        "breached_waiting",
        "breaches",
        "breaches_answer",
        "calendar",
        "channel",
        "created",
        "fr_hist",
        "handle_hist",
        "last_queued_ts",
        "name",
        "open_heap",
        "ordered",
        "overdue_first_response",
        "pending",
        "queued",
        "reopened",
        "res_hist",
        "solved",
        "solved_first_contact",
        "tickets_open",
        "tickets_paused",
        "wait_hist",
        "waiting",
    )

    def __init__(self, channel: ChannelRuntime, name: str, wait_bounds: tuple[float, ...]) -> None:
        self.channel = channel
        self.name = name
        self.queued = self.answered = self.answered_in_sla = 0
        self.abandoned = self.abandoned_short = self.abandoned_in_sla = 0
        self.breaches_answer = 0
        self.breaches = [0, 0, 0]
        """Ticket clocks breached: first response, next reply, resolution."""
        self.breached_waiting = 0
        """Contacts waiting now whose wait exceeds T: breached ones, less ``below_t``."""
        self.below_t: dict[str, Contact] = {}
        """Breached contacts waiting whose wait is back under T because a reload raised T: out
        of ``breached_waiting`` until their wait passes the new T (a timer); normally empty."""
        self.waiting: dict[str, Contact] = {}
        self.ordered = True  # waiting dict is in queued-time order (oldest first)
        self.pending: dict[str, Contact] = {}
        """Waiting, not yet breached, queued in time order: the first entry is next to breach."""
        self.last_queued_ts = -math.inf
        self.created = self.solved = self.tickets_open = 0
        self.solved_first_contact = self.reopened = self.tickets_paused = 0
        self.at_risk = [0, 0, 0]
        """Open tickets at risk per clock: first response, next reply, resolution."""
        self.awaiting_first_response = 0
        """Open tickets without an agent response yet."""
        self.overdue_first_response = 0
        """Open tickets past their first-response deadline without a response (the clock
        breached and has not stopped: running or paused)."""
        self.open_heap: list[tuple[float, str]] = []
        """(created, ticket id) of open tickets; its head is the oldest open ticket (solved
        entries below the head are dropped when the heap doubles the open count)."""
        self.calendar: Calendar = ALWAYS
        self.wait_hist = Histogram(wait_bounds)
        self.handle_hist = Histogram(bucket_bounds(HANDLE_BUCKETS, ()))
        settings = channel.settings
        self.fr_hist = Histogram(
            bucket_bounds(FIRST_RESPONSE_BUCKETS, (settings.first_response_seconds,))
        )
        self.res_hist = Histogram(bucket_bounds(RESOLUTION_BUCKETS, (settings.resolution_seconds,)))

    at_risk_fr = property(lambda self: self.at_risk[0])
    at_risk_nr = property(lambda self: self.at_risk[1])
    at_risk_res = property(lambda self: self.at_risk[2])
    breaches_fr = property(lambda self: self.breaches[0])
    breaches_nr = property(lambda self: self.breaches[1])
    breaches_res = property(lambda self: self.breaches[2])

    def oldest_open_ts(self) -> float | None:
        """Creation time of the oldest open ticket."""
        return self.open_heap[0][0] if self.open_heap else None

    def oldest_queued_ts(self) -> float | None:
        """Queued time of the longest-waiting contact (O(1) while arrivals come in order)."""
        if not self.waiting:
            return None
        if self.ordered:
            return next(iter(self.waiting.values())).queued_ts
        return min(c.queued_ts for c in self.waiting.values())

    def add_waiting(self, contact_id: str, contact: Contact) -> bool:
        """Start waiting; ``False`` when it arrived out of order (it then needs its own timer)."""
        in_order = contact.queued_ts >= self.last_queued_ts
        if not self.waiting:
            self.ordered = True
        elif not in_order:
            self.ordered = False
        self.waiting[contact_id] = contact
        if in_order:
            self.last_queued_ts = contact.queued_ts
            self.pending[contact_id] = contact
        return in_order


class ChannelRuntime:
    """One channel: its settings, queues, windows and channel-level customer-voice counters."""

    __slots__ = (
        "complaints",
        "name",
        "open_by_priority",
        "queues",
        "ratings",
        "settings",
        "voice",
        "windows",
    )

    def __init__(
        self,
        name: str,
        settings: ChannelSettings,
        window_spans: dict[str, float],
        wait_bounds: tuple[float, ...],
        day_start: Callable[[float], float] | None = None,
        *,
        exact_end: bool = False,
    ) -> None:
        self.name = name
        self.settings = settings
        self.windows = SlidingWindows(window_spans, day_start, exact_end=exact_end)
        self.queues: dict[str, QueueState] = {
            q: QueueState(self, q, wait_bounds) for q in settings.queues
        }
        self.ratings = [0] * 6  # index 1..5
        self.complaints: dict[str, int] = {}
        self.voice = VoiceCounts()
        self.open_by_priority = dict.fromkeys(PRIORITIES, 0)

    def queue(self, name: str, wait_bounds: tuple[float, ...]) -> QueueState | None:
        """The queue's state; ``default`` is always accepted (events may omit ``queue``)."""
        q = self.queues.get(name)
        if q is None and name == "default":
            q = self.queues[name] = QueueState(self, name, wait_bounds)
        return q


def wait_bounds_for(channels: dict[str, ChannelSettings]) -> tuple[float, ...]:
    """Wait-histogram buckets: defaults plus every channel's T, shared by all series."""
    return bucket_bounds(WAIT_BUCKETS, (c.answer_seconds for c in channels.values()))
