"""The metrics engine: fed typed events and told the time; no I/O, no wall clock.

``apply(event)`` updates state for one event and returns ``None`` or the reason it was not
applied. ``advance(now)`` moves the clock; once per second of clock time windows slide and
deadlines are decided. A deadline is decided once the *watermark* (``now - allowed_lateness``) is
past it, so an outcome delivered up to ``allowed_lateness`` late still counts as on time;
``flush`` moves the watermark to ``now`` (end of a replay) and decides exactly. Breaches are
stamped with their deadline whenever they are decided.

Deadlines cost O(1) or O(log n) per item, never a scan of open items: contacts queued in time
order wait in an insertion-ordered "pending" dict per queue (T is per channel, so that order is
deadline order, and an answered contact simply leaves it); contacts that arrive out of order and
all ticket clocks use one timer heap. Entries a later change made stale are skipped when they
come due and, once the heap has doubled since its last clean-up, dropped a step at a time
(``TimerHeap.tidy``); the heap is rebuilt from the open items after a snapshot restore, and
re-armed on every reload.

An outcome that arrives before its item's opening event (an ``answered`` before its ``queued``, a
``solved`` before its ``created``) is *held* while the clock is within ``allowed_lateness`` of its
``ts``. A contact's held outcomes are applied right after its ``queued``, in ``ts`` order; a
ticket's once the watermark passes them, as all its events (below). So the numbers equal those
of the events in order. A held outcome whose item has not opened once
``now - allowed_lateness > ts`` (or at ``flush``) becomes an
``unknown_contact``/``unknown_ticket`` reject; the caller collects these deferred rejects with
:meth:`Engine.take_expired_early` together with the opaque token it passed to :meth:`Engine.apply`.

A ticket's events after its ``created`` (responded, solved, reopened, status, priority and
customer-reply changes) are all held until the watermark passes them, then applied in ``ts``
order (one ticket's events of one instant in lifecycle order), so that whatever order they arrive
in within the lateness, a ticket's numbers are those of its events in ``ts`` order. Its
``created`` applies at once; an event stamped before it is ``unknown_ticket``. One that cannot be
held (no lateness, stamped more than the lateness before the clock, no room in
``max_early_outcomes``, or their bytes, see ``HELD_BYTES_PER_OUTCOME``) applies at once, as it
stands.

An outcome of an open contact that an *earlier* event of it, still on its way, could change is
held the same way: one its state refuses now (an ``answered`` of a contact already answered), an
``ended`` while the contact still waits (its ``answered`` may come). Whenever an event of the
contact applies, its held outcomes stamped after it are tried again in ``ts`` order, and an event
of the contact stamped at or after a held one waits behind it (held too). Once the watermark
passes a held outcome it is applied as it stands (an ``ended`` of a waiting contact is then an
abandon; a refused one a deferred ``invalid_transition``).

Memory is bounded by the ``limits`` settings (``docs/metrics.md``, "Bounds"): past a bound a new
contact, ticket, agent or held contact outcome is refused with ``Reject.CAPACITY`` (a ticket
event with no room to be held applies at once instead); past ``max_solved_tickets`` the oldest
solved ticket is forgotten, as is one solved more than ``solved_ticket_retention`` ago. Each
bound reached is counted in :attr:`Engine.capacity_exhausted`, by kind.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import deque
from collections.abc import Callable
from typing import cast

import msgspec

from support_monitor.monitor.config import Settings
from support_monitor.monitor.engine.clocks import (
    ALWAYS,
    Calendar,
    Clock,
    day_start,
    instant,
    shift,
)
from support_monitor.monitor.engine.dedup import Deduplicator
from support_monitor.monitor.engine.sketch import bucket_of
from support_monitor.monitor.engine.state import (
    ChannelRuntime,
    Contact,
    QueueState,
    Ticket,
    wait_bounds_for,
)
from support_monitor.monitor.engine.timers import TimerHeap
from support_monitor.monitor.engine.voice import DETRACTOR_MAX, PROMOTER_MIN, polarity
from support_monitor.monitor.engine.workforce import Workforce
from support_monitor.monitor.errors import SupportMonitorError
from support_monitor.monitor.events import (
    AgentState,
    BotSessionEnded,
    ComplaintReceived,
    ContactAbandoned,
    ContactAnswered,
    ContactEnded,
    ContactQueued,
    Event,
    Reject,
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
)

# Timer kinds; at-risk timers sort before breaches at the same instant because a deadline is
# "at risk" up to and including the deadline itself, and breached only once strictly past it.
_FR_RISK, _NR_RISK, _RES_RISK, _ANSWER, _FR, _NR, _RES, _OVER_T, _LATE = range(9)
"""``_OVER_T``: a breached contact of ``QueueState.below_t`` passes the (raised) T again.
``_LATE``: a contact whose ``queued`` came after the watermark had passed its deadline, due at
the clock of its arrival (so decided once the clock is ``allowed_lateness`` past it)."""
_INCLUSIVE = (_FR_RISK, _NR_RISK, _RES_RISK)
_CLOCK_OF_KIND = {_FR: 0, _NR: 1, _RES: 2, _FR_RISK: 0, _NR_RISK: 1, _RES_RISK: 2}
_DEADLINE_KIND = (_FR, _NR, _RES)
_RISK_KIND = (_FR_RISK, _NR_RISK, _RES_RISK)
NEXT_REPLY = 1
"""Index of the next-reply clock in ``Ticket.clocks`` (first response 0, resolution 2)."""
RESOLUTION = 2
"""Index of the resolution clock in ``Ticket.clocks``."""
_SOLVED: tuple[Clock | None, Clock | None, Clock | None] = (None, None, None)
_SOLVED_BREACHED: tuple[Clock | None, Clock | None, Clock | None] = (
    None,
    None,
    Clock(None, stopped=True, breached=True),
)
"""The clocks of every solved ticket (shared, never changed): the resolution clock is kept
only as the fact that it breached once (a ticket breaches resolution at most once)."""
DEFAULT_PRIORITY = "normal"
"""The priority of a ticket created without one."""

CAPACITY_KINDS = (
    "contacts",
    "tickets",
    "solved_tickets",
    "early_outcomes",
    "agents",
    "waiting_expired",
)
"""The ``kind`` label of ``support_monitor_capacity_exhausted_total``."""

WAITING_SWEEP_SECONDS = 60
"""How often (seconds of the clock) waiting contacts past ``ingest.waiting_retention`` are
looked for: one is forgotten at most this long after its retention ran out."""

HELD_BYTES_PER_OUTCOME = 4096
"""Held outcomes keep their tokens (raw messages, for a dead letter): together at most
``max_early_outcomes`` x 4 KiB of raw bytes. One that would pass that is not held, as when
``max_early_outcomes`` are held; one bigger than 4 KiB is held while the room lasts."""


def _elapsed(start: float, end: float) -> float:
    """Seconds from ``start`` to ``end`` (0 if negative), rounded to the microsecond. Event times
    are whole microseconds, but as float epochs their difference carries noise in the last bits
    (10:00:20.2 - 10:00:00 is 20.200000047683716): rounded, a wait of exactly T compares equal
    to T, and one of exactly ``short_abandon_seconds`` is not short."""
    return max(0.0, round(end - start, 6))


def _token_bytes(token: object) -> int:
    """Bytes of the str/bytes parts of a plain-data token such as ``(raw, position, source)``."""
    if isinstance(token, bytes | str):
        return len(token)
    if isinstance(token, tuple | list):
        size = 0
        for part in token:  # a loop: a generator costs about 1 us a held event more
            if isinstance(part, bytes | str):
                size += len(part)
        return size
    return 0


_CONTACT_OUTCOMES = (ContactAnswered, ContactAbandoned, ContactEnded)
_TICKET_OUTCOMES = (
    TicketResponded,
    TicketSolved,
    TicketReopened,
    TicketStatusChanged,
    TicketPriorityChanged,
    TicketCustomerReplied,
)
_TICKET_ORDERED = frozenset(_TICKET_OUTCOMES)
"""Ticket events applied in ``ts`` order: each waits until the watermark passes it (see the
module doc)."""
_ITEM_ID: dict[type, str] = {
    **dict.fromkeys(_CONTACT_OUTCOMES, "contact_id"),
    **dict.fromkeys(_TICKET_OUTCOMES, "ticket_id"),
}
"""Outcome type -> the field naming the contact or ticket whose lifecycle it moves on."""


_OPENING = frozenset({ContactQueued, TicketCreated, AgentState})
"""The event types that open something under a queue (:meth:`Engine.refuses`)."""


def _item_key(event: Event) -> HeldKey | None:
    """The contact or ticket whose lifecycle ``event`` moves on (opening events excluded)."""
    field = _ITEM_ID.get(type(event))
    if field is None:
        return None
    return (field == "ticket_id", getattr(event, field))


_REFERENCING = frozenset({TicketRated, ComplaintReceived, SurveyAnswered, SentimentScored})
"""Event types counted on the channel of the ticket or contact they name while it is open at
their ``ts``. One whose answer an event still on its way may change waits until the watermark
passes it (``_wait_for_owner``). (A bot session's escalation also names its contact, but the
session counts on its own channel at once: holding it would hold the containment ratio back by
the lateness.)"""
_REFERENCES: tuple[bool, str] = (True, "")
"""The held key every such event shares: apart from any item's own held outcomes, which it must
neither wait behind nor be tried with (no ticket id is empty)."""

_LIFECYCLE_RANK: dict[type, int] = {
    **dict.fromkeys(_REFERENCING, 0),
    ContactAnswered: 0,
    ContactAbandoned: 0,
    ContactEnded: 1,
    TicketPriorityChanged: 0,
    TicketCustomerReplied: 0,
    TicketStatusChanged: 1,
    TicketResponded: 2,
    TicketSolved: 3,
    TicketReopened: 4,
}
"""Held outcomes of one item stamped at the same ``ts`` are applied in this order."""

HeldKey = tuple[bool, str]
"""(is a ticket, contact or ticket id): whose opening event a held outcome waits for."""
Held = tuple[float, int, Event, object]
"""A held outcome: (ts, arrival sequence number, event, the caller's token)."""


class HeldItem:
    """One item's held outcomes: by arrival sequence number, with two min-heaps over them whose
    entries are dropped lazily (an entry whose number is no longer held is skipped): every
    outcome in application order, ``(ts, lifecycle rank, seq)``, and the ones that close a
    contact (``ended``, ``abandoned``), ``(ts, seq)``. So the first one to apply and the first
    closer cost a heap step, not a pass over all of them. ``sizes``: each held outcome's token
    bytes (``HELD_BYTES_PER_OUTCOME``), measured once when it is held."""

    __slots__ = ("by_seq", "closers", "order", "sizes")

    def __init__(self) -> None:
        self.by_seq: dict[int, Held] = {}
        self.sizes: dict[int, int] = {}
        self.order: list[tuple[float, int, int]] = []
        self.closers: list[tuple[float, int]] = []

    def take(self, seq: int) -> tuple[Held, int]:
        """Take the held outcome ``seq`` out (its heap entries are dropped lazily), with its
        size."""
        return self.by_seq.pop(seq), self.sizes.pop(seq)

    def add(self, held: Held, size: int) -> None:
        ts, seq, event, _ = held
        self.sizes[seq] = size
        by_seq = self.by_seq
        if len(self.order) > 2 * len(by_seq) + 16:  # mostly spent entries: keep the live ones
            self.order = [e for e in self.order if e[2] in by_seq]
            heapq.heapify(self.order)
            self.closers = [e for e in self.closers if e[1] in by_seq]
            heapq.heapify(self.closers)
        by_seq[seq] = held
        heapq.heappush(self.order, (ts, _LIFECYCLE_RANK[type(event)], seq))
        if isinstance(event, ContactEnded | ContactAbandoned):
            heapq.heappush(self.closers, (ts, seq))

    def first(self) -> tuple[float, int, int] | None:
        """The order entry of the held outcome that applies first (``None``: none held)."""
        order, by_seq = self.order, self.by_seq
        while order:
            entry = order[0]
            if entry[2] in by_seq:
                return entry
            heapq.heappop(order)
        return None

    def first_closer(self) -> float:
        """``ts`` of the earliest held ``ended``/``abandoned`` (``inf``: none held)."""
        closers, by_seq = self.closers, self.by_seq
        while closers:
            if closers[0][1] in by_seq:
                return closers[0][0]
            heapq.heappop(closers)
        return math.inf


UNCATEGORIZED = "uncategorized"
OTHER = "other"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def shape_change(old: Settings, new: Settings) -> str | None:
    """What a config change alters of the state's shape (windows, channels, queues, complaint
    labels, the de-duplication window, the day), said as the reason a restart is needed; ``None``
    when a reload can apply it."""
    for what, before, after in (
        ("windows", old.windows, new.windows),
        ("channels", list(old.channels), list(new.channels)),
        (
            "queues",
            {k: c.queues for k, c in old.channels.items()},
            {k: c.queues for k, c in new.channels.items()},
        ),
        (
            "ingest.complaint_categories",
            old.ingest.complaint_categories,
            new.ingest.complaint_categories,
        ),
        ("ingest.complaint_tags", old.ingest.complaint_tags, new.ingest.complaint_tags),
        ("ingest.dedup_max_ids", old.ingest.dedup_max_ids, new.ingest.dedup_max_ids),
        ("ingest.dedup_horizon", old.ingest.dedup_horizon, new.ingest.dedup_horizon),
        ("timezone", old.timezone, new.timezone),
        ("day_starts_at", old.day_starts_at, new.day_starts_at),
    ):
        if before != after:
            return f"{what} changed: restart the daemon to apply it"
    for name, channel in old.channels.items():
        was_live = channel.answer_seconds is not None
        if was_live != (new.channels[name].answer_seconds is not None):
            change = "removed" if was_live else "added"
            return (
                f"channels.{name}.answer_seconds {change} (the channel would change between "
                "live contacts and tickets): restart the daemon to apply it"
            )
    return None


class EngineState(msgspec.Struct):
    """The engine's own bookkeeping beyond its public attributes (``channels``, ``contacts``,
    ``tickets``, ``dedup``, ``now``, ``watermark``, ``capacity_exhausted``): what
    :meth:`Engine.export_state` gives and :meth:`Engine.restore_state` takes. The timer heap is
    not part of it: :meth:`Engine.rebuild_timers` derives it from the open items."""

    next_second: float
    """Clock time at which the next whole second starts (windows slide, deadlines decided)."""
    talking: list[str]
    """Answered, not ended contact ids, in answer order (expiry order)."""
    solved: list[str]
    """Solved tickets still remembered, oldest solve first (the order they are forgotten in)."""
    early: list[tuple[HeldKey, Held]]
    """Held events, item by item in holding order of the items (a restore sorts each item's
    by ``ts``, rank and arrival)."""
    early_seq: int
    """The sequence number the next held outcome gets."""


class RestartNeeded(SupportMonitorError):  # noqa: N818 - a verdict, read as "restart needed: ..."
    """A reload that changes the shape of the state; the running config stays."""


class Engine:
    """All metric state of one daemon (or one replay). ``exact_end``: the windows can be cut
    exactly at a fractional last instant (:meth:`end_at`, a replay's end), at the cost of one
    aggregate per fractional outcome instant in the longest sliding window."""

    def __init__(self, settings: Settings, *, exact_end: bool = False) -> None:
        self.settings = settings
        ingest = settings.ingest
        self.lateness = ingest.allowed_lateness
        self._answered_retention = ingest.answered_retention
        self._waiting_retention = ingest.waiting_retention
        self._next_waiting_sweep = -math.inf
        limits = settings.limits
        self._ticket_retention = limits.solved_ticket_retention
        self._max_contacts = limits.max_open_contacts
        self._max_tickets = limits.max_open_tickets
        self._max_solved = limits.max_solved_tickets
        self._max_early = limits.max_early_outcomes
        self._complaint_tags = frozenset(ingest.complaint_tags)
        self._categories = frozenset(ingest.complaint_categories)
        self.wait_bounds = wait_bounds_for(dict(settings.channels))
        spans = settings.window_seconds
        starts = day_start(settings.timezone, settings.day_starts_at)
        self.channels: dict[str, ChannelRuntime] = {
            name: ChannelRuntime(name, ch, spans, self.wait_bounds, starts, exact_end=exact_end)
            for name, ch in settings.channels.items()
        }
        self.calendars: dict[str, Calendar] = {
            name: calendar.build() for name, calendar in settings.calendars.items()
        }
        for ch in self.channels.values():
            for q in ch.queues.values():
                q.calendar = self.calendar_of(q)
        for ch in self.channels.values():  # every allowed category exported from the start
            ch.complaints = dict.fromkeys((*ingest.complaint_categories, UNCATEGORIZED, OTHER), 0)
        self.contacts: dict[str, Contact] = {}
        self._talking: dict[str, Contact] = {}  # answered, not ended; in answer order for expiry
        self._closed: dict[str, tuple[ChannelRuntime, float, float]] = {}
        """Contacts ended or abandoned within the allowed lateness: their channel, queued and
        closing ``ts``, in the order they closed (see :meth:`_open_channel`); at most
        ``limits.max_open_contacts``; not in snapshots."""
        self.tickets: dict[str, Ticket] = {}
        self._solved_order: dict[str, None] = {}  # solved tickets still remembered, in solve order
        self.dedup = Deduplicator(ingest.dedup_max_ids, ingest.dedup_horizon)
        self._timers = TimerHeap(self._spent, (*_INCLUSIVE, _LATE))
        self.now = -math.inf
        self.watermark = -math.inf
        self._next_second = -math.inf
        self._early: dict[HeldKey, HeldItem] = {}
        """Held outcomes by item."""
        self._early_heap: list[tuple[float, int, HeldKey]] = []  # (ts, seq, key), lazy deletes
        self._early_count = 0
        self._early_bytes = 0  # token bytes of the held outcomes (HELD_BYTES_PER_OUTCOME)
        self._early_seq = 0
        self._expired: deque[tuple[object, Reject]] = deque()
        self._applied_late: deque[tuple[object, type, float]] = deque()
        self._final = False
        """Set while a held outcome is applied for good: handlers then judge it as it stands
        instead of asking to wait for an earlier event of its item."""
        self._waits = False
        """Set by a handler that asks to wait (see :meth:`_wait`); the caller resets it."""
        self.held_last = False
        """Set when :meth:`apply` held its event (returned ``None`` without applying it yet);
        the caller resets it. Held events are counted as applied only once they apply."""
        self.capacity_exhausted: dict[str, int] = dict.fromkeys(CAPACITY_KINDS, 0)
        """kind -> items refused or forgotten because a ``limits`` bound was reached."""
        self._handlers: dict[type, Callable[[Event, float], Reject | None]] = {
            ContactQueued: self._queued,  # type: ignore[dict-item]
            ContactAnswered: self._answered,  # type: ignore[dict-item]
            ContactAbandoned: self._abandoned,  # type: ignore[dict-item]
            ContactEnded: self._ended,  # type: ignore[dict-item]
            TicketCreated: self._created,  # type: ignore[dict-item]
            TicketResponded: self._responded,  # type: ignore[dict-item]
            TicketSolved: self._solved,  # type: ignore[dict-item]
            TicketReopened: self._reopened,  # type: ignore[dict-item]
            TicketRated: self._rated,  # type: ignore[dict-item]
            ComplaintReceived: self._complaint,  # type: ignore[dict-item]
            TicketStatusChanged: self._status_changed,  # type: ignore[dict-item]
            TicketPriorityChanged: self._priority_changed,  # type: ignore[dict-item]
            TicketCustomerReplied: self._customer_replied,  # type: ignore[dict-item]
            AgentState: self._agent_state,  # type: ignore[dict-item]
            SurveyAnswered: self._survey,  # type: ignore[dict-item]
            BotSessionEnded: self._bot_session,  # type: ignore[dict-item]
            SentimentScored: self._sentiment,  # type: ignore[dict-item]
        }
        self.workforce = Workforce(
            settings, self.channels, self.capacity_exhausted, exact_end=exact_end
        )

    # ------------------------------------------------------------------ export / restore

    def export_state(self) -> EngineState:
        """The bookkeeping of :class:`EngineState` (lists copied; held events are the live
        objects)."""
        return EngineState(
            self._next_second,
            list(self._talking),
            list(self._solved_order),
            [(key, held) for key, item in self._early.items() for held in item.by_seq.values()],
            self._early_seq,
        )

    def restore_state(self, state: EngineState) -> None:
        """Take over ``state`` (as :meth:`export_state` gives it). ``contacts`` must already hold
        every talking contact (``KeyError`` otherwise); the timers are not rebuilt here (call
        :meth:`rebuild_timers` once every item is restored)."""
        contacts = self.contacts
        self._talking = {cid: contacts[cid] for cid in state.talking}
        self._solved_order = dict.fromkeys(state.solved)
        early: dict[HeldKey, HeldItem] = {}
        heap: list[tuple[float, int, HeldKey]] = []
        for key, held in state.early:
            item = early.get(key)
            if item is None:
                item = early[key] = HeldItem()
            item.add(held, _token_bytes(held[3]))
            heap.append((held[0], held[1], key))
        heapq.heapify(heap)
        self._early = early
        self._early_heap = heap
        self._early_count = len(heap)
        self._early_bytes = sum(sum(item.sizes.values()) for item in early.values())
        self._early_seq = state.early_seq
        self._next_second = state.next_second

    # ------------------------------------------------------------------ the clock

    def advance(self, now: float) -> None:
        """Move the clock to ``now`` (never backwards). Called per event in replay: within a
        second it moves the clock and judges the held outcomes the watermark has passed; each
        new second also slides windows and decides deadlines."""
        if now <= self.now:
            return
        self.now = now
        if now >= self._next_second:
            self._next_second = math.floor(now) + 1
            self.workforce.accrue(math.floor(now))
            for ch in self.channels.values():
                ch.windows.advance(now)
            early = self._early_heap
            if early and early[0][0] < now - self.lateness:
                # held outcomes first: one may close its item before a deadline it would settle
                self._expire_early(now - self.lateness)
            self._decide(now - self.lateness)
            self.dedup.expire(now)
            self._forget_talking(now - self._answered_retention)
            if now >= self._next_waiting_sweep:
                # on whole multiples of the sweep period, so that a replay that jumped over a
                # quiet gap sweeps at the same instants as one that ticked through it
                sweeps = math.floor(now / WAITING_SWEEP_SECONDS) + 1
                self._next_waiting_sweep = sweeps * WAITING_SWEEP_SECONDS
                self._forget_waiting(now - self._waiting_retention)
        early = self._early_heap
        if early and early[0][0] < now - self.lateness:
            self._expire_early(now - self.lateness)

    def next_wakeup(self) -> float:
        """The earliest clock time at which something held may change a reading without an
        event: a timer (possibly spent) is decided once the clock is ``allowed_lateness`` past
        it; a today window resets at its day start; the waiting sweep (on multiples of
        ``WAITING_SWEEP_SECONDS``) forgets a contact waiting longer than
        ``ingest.waiting_retention``. ``inf`` when nothing is held."""
        wake = self._timers.first() + self.lateness
        # Every channel's today window resets at the same instant: the first one's will do.
        first = next(iter(self.channels.values()))
        return min(wake, first.windows.next_reset, self._next_forgetting())

    def _next_forgetting(self) -> float:
        """The sweep that will forget the longest-waiting contact (``inf``: none waits)."""
        oldest = math.inf
        for ch in self.channels.values():
            if ch.settings.answer_seconds is None:
                continue
            for q in ch.queues.values():
                queued = q.oldest_queued_ts()
                if queued is not None:
                    oldest = min(oldest, queued)
        if math.isinf(oldest):
            return math.inf
        expiry = oldest + self._waiting_retention  # forgotten once the clock is past it
        after = (math.floor(expiry / WAITING_SWEEP_SECONDS) + 1) * WAITING_SWEEP_SECONDS
        if after <= self.now:  # swept past it and kept (not breached yet): no sweep to wait for
            return math.inf
        return max(self._next_waiting_sweep, after)

    def flush(self, now: float | None = None) -> None:
        """Advance to ``now`` and decide every deadline up to it. No more late events will come,
        so every held outcome is judged now (:meth:`settle_held`): applied as it stands when its
        item is open, else a deferred reject."""
        if now is not None:
            self.advance(now)
        self._expire_early(math.inf)  # before the deadlines (see ``advance``)
        self._decide(self.now)

    def end_at(self, now: float) -> None:
        """The last instant of a replay, after :meth:`flush` to it: every sliding window is cut
        exactly at ``now``, also between two whole seconds (``now - W < t <= now``; with
        ``exact_end`` only). Nothing may be applied afterwards: only the readout."""
        for ch in self.channels.values():
            ch.windows.end_at(now)
        self.workforce.end_at(now)

    def settle_held(self) -> None:
        """Judge every held outcome now, as if the watermark had passed it (applied as it
        stands, or a deferred reject for :meth:`take_expired_early`): for a stop with no
        snapshot to keep them in."""
        self._expire_early(math.inf)

    def _decide(self, watermark: float) -> None:
        """Breach every contact and ticket clock whose deadline is before the watermark; forget
        solved tickets past their retention."""
        self.watermark = watermark = max(self.watermark, watermark)
        self._timers.tidy()
        for q in self._live_queues():
            answer = q.channel.settings.answer_seconds
            assert answer is not None
            pending = q.pending
            while pending:
                c = next(iter(pending.values()))
                if instant(c.queued_ts + answer) >= watermark:
                    break
                self._breach_waiting(c)
        for when, kind, key in self._timers.pop_due(watermark):
            self._on_timer(when, kind, key)
        self._forget_solved(watermark - self._ticket_retention)

    def _forget_solved(self, cutoff: float) -> None:
        """Forget solved tickets solved before ``cutoff``, oldest solve first: a solve that
        arrived after a later-stamped one waits for it (documented in docs/metrics.md)."""
        solved = self._solved_order
        tickets = self.tickets
        while solved:
            ticket_id = next(iter(solved))
            t = tickets[ticket_id]
            if t.solved_ts is None or t.solved_ts >= cutoff:
                return
            del solved[ticket_id]
            del tickets[ticket_id]

    def rebuild_timers(self) -> None:
        """Re-arm the timer heap from the open items, dropping spent entries (a solved ticket's
        deadlines, an answered contact's). Timers already due fire again at the next decision,
        where each one re-checks its item and does nothing if it already took effect (a breach
        is counted once, at-risk is set once), so the outcome equals the old heap's."""
        self._timers.clear()
        entries: list[tuple[float, int, str]] = []
        for cid, c in self.contacts.items():
            answer = c.q.channel.settings.answer_seconds
            waiting_alone = c.answered_ts is None and not c.breached and cid not in c.q.pending
            if waiting_alone and answer is not None:
                entries.append((instant(c.queued_ts + answer), _ANSWER, cid))
        for ch in self.channels.values():
            answer = ch.settings.answer_seconds
            for q in ch.queues.values():  # a snapshot keeps neither the count nor ``below_t``
                breached = sum(1 for c in q.waiting.values() if c.breached)
                q.below_t = self._below_t(q, answer)
                q.breached_waiting = breached - len(q.below_t)
        entries.extend(self._over_t_timers())
        for tid, t in self.tickets.items():
            if t.solved_ts is None:
                self._arm_ticket(tid, t)
        self._timers.extend(entries)

    def compact_timers(self) -> int:
        """Drop every spent entry of the timer heap now, in one pass (each decision drops a
        few, see :mod:`monitor.engine.timers`). An entry is spent when it can never take
        effect (see :meth:`_spent`); the others stay as they are, so the outcome is the
        heap's, at a dictionary lookup an entry (re-arming every open ticket instead, as
        :meth:`rebuild_timers` does after a restore, costs a business-time computation each).
        Returns how many entries it dropped."""
        return self._timers.compact()

    @property
    def timer_entries(self) -> int:
        """Entries in the timer heap, spent ones included (see ``docs/metrics.md``, bounds)."""
        return len(self._timers)

    def timers(self) -> list[tuple[float, int, str]]:
        """The timer heap's entries, spent ones included, in no particular order."""
        return self._timers.entries()

    def _spent(self, when: float, kind: int, key: str) -> bool:
        """Whether a timer entry can never take effect: :meth:`_on_timer` ignores it now and
        at any later time. Its contact or ticket is gone, answered, breached or solved, its
        clock is paused or stopped, or its instant is no longer its clock's deadline or
        at-risk instant. Whatever brings such an item back under a timer (a reopen, a resumed
        clock, a new target, a reload) pushes an entry of its own."""
        if kind in (_ANSWER, _OVER_T, _LATE):
            c = self.contacts.get(key)
            if c is None:
                return True
            if kind == _OVER_T:
                return key not in c.q.below_t
            return c.answered_ts is not None or c.breached
        t = self.tickets.get(key)
        if t is None or t.solved_ts is not None:
            return True
        clock = t.clocks[_CLOCK_OF_KIND[kind]]
        if clock is None or clock.stopped:  # paused: see _over_while_paused
            return True
        return (clock.risk_at if kind in _INCLUSIVE else clock.deadline) != when

    def _over_t_timers(self) -> list[tuple[float, int, str]]:
        out: list[tuple[float, int, str]] = []
        for ch in self.channels.values():
            answer = ch.settings.answer_seconds
            if answer is not None:
                for q in ch.queues.values():
                    out.extend(
                        (instant(c.queued_ts + answer), _OVER_T, cid)
                        for cid, c in q.below_t.items()
                    )
        return out

    def _set_below_t(self) -> None:
        """After T changed: a breached contact still waiting is in ``breached_waiting`` only
        while its wait exceeds T (the breach itself stays counted)."""
        for ch in self.channels.values():
            answer = ch.settings.answer_seconds
            for q in ch.queues.values():
                q.breached_waiting += len(q.below_t)
                q.below_t = self._below_t(q, answer)
                q.breached_waiting -= len(q.below_t)

    def _below_t(self, q: QueueState, answer: float | None) -> dict[str, Contact]:
        """The queue's breached contacts still waiting whose wait is not past ``answer`` (T)
        at the watermark: breached under a lower T (see ``QueueState.below_t``)."""
        if answer is None:
            return {}
        watermark = self.watermark
        return {
            cid: c
            for cid, c in q.waiting.items()
            if c.breached and instant(c.queued_ts + answer) >= watermark
        }

    def apply_thresholds(self) -> None:
        """Apply the settings' ticket targets to the open tickets, as a reload does, and re-arm
        every timer: for an engine restored from a snapshot, whose clocks keep the targets they
        had when it was taken. Business time already run stays; a clock whose target changed
        is no longer at risk until its new at-risk instant (the next decision sets it again if
        that has passed), and T applies to waiting contacts through ``rebuild_timers``."""
        for t in self.tickets.values():
            if t.solved_ts is not None:
                continue
            targets = t.q.channel.settings.clock_targets(t.priority)
            for index, clock in enumerate(t.clocks):
                if clock is not None and clock.target != targets[index]:
                    self._clear_risk(t, index, clock)
                    clock.target = targets[index]
            self.update_paused(t)
        self.rebuild_timers()

    def _over_t(self, when: float, key: str) -> None:
        """A breached contact of ``below_t`` waited past the raised T: back in the gauge."""
        c = self.contacts.get(key)
        if c is None or key not in c.q.below_t:
            return
        answer = c.q.channel.settings.answer_seconds
        if answer is not None and instant(c.queued_ts + answer) == when:
            del c.q.below_t[key]
            c.q.breached_waiting += 1

    def _on_timer(self, when: float, kind: int, key: str) -> None:
        if kind == _OVER_T:
            self._over_t(when, key)
            return
        if kind in (_ANSWER, _LATE):
            self._contact_due(when, kind, key)
            return
        t = self.tickets.get(key)
        if t is None or t.solved_ts is not None:
            return
        index = _CLOCK_OF_KIND[kind]
        clock = t.clocks[index]
        if clock is None or clock.stopped:  # paused: see _over_while_paused
            return
        if kind in _INCLUSIVE:
            if not clock.risk and clock.risk_at == when and clock.deadline >= self.watermark:
                clock.risk = True
                t.q.at_risk[index] += 1
        elif clock.deadline == when:
            self._settle(t, index, clock, math.inf)

    def _contact_due(self, when: float, kind: int, key: str) -> None:
        """A waiting contact's deadline (``_ANSWER``), or the end of a late contact's lateness
        (``_LATE``), passed the watermark: breached if it still waits."""
        c = self.contacts.get(key)
        if c is None or c.answered_ts is not None or c.breached:
            return
        answer = c.q.channel.settings.answer_seconds
        if answer is None:
            return
        deadline = instant(c.queued_ts + answer)
        if deadline == when or (kind == _LATE and deadline < when):
            self._breach_waiting(c)

    def _forget_talking(self, cutoff: float) -> None:
        """Forget answered contacts whose ``ended`` never came (oldest answers first)."""
        talking = self._talking
        while talking:
            contact_id, c = next(iter(talking.items()))
            if c.answered_ts is None or c.answered_ts >= cutoff:
                return
            del talking[contact_id]
            del self.contacts[contact_id]

    def _forget_waiting(self, cutoff: float) -> None:
        """Forget contacts still waiting since before ``cutoff``: their outcome was lost
        upstream (``ingest.waiting_retention``). They leave the waiting gauges and free their
        place, counted as ``waiting_expired``."""
        for ch in self.channels.values():
            if ch.settings.answer_seconds is None:
                continue
            for q in ch.queues.values():
                if not q.waiting:
                    continue
                oldest = q.oldest_queued_ts()
                if oldest is None or oldest >= cutoff:
                    continue
                # A breached one only: its breach was counted at its deadline (not yet the
                # case when T is longer than the retention).
                stale = [cid for cid, c in q.waiting.items() if c.queued_ts < cutoff and c.breached]
                for contact_id in stale:
                    self._leave_queue(contact_id, q.waiting[contact_id], late_breach=False)
                    del self.contacts[contact_id]
                    self.capacity_exhausted["waiting_expired"] += 1

    def _at(self, when: float, kind: int, key: str) -> None:
        self._timers.push(when, kind, key)

    def _live_queues(self) -> list[QueueState]:
        return [
            q
            for ch in self.channels.values()
            if ch.settings.answer_seconds is not None
            for q in ch.queues.values()
            if q.pending
        ]

    # ------------------------------------------------------------------ reload

    def reconfigure(self, settings: Settings) -> None:
        """Take new SLA thresholds without losing state (config reload).

        New thresholds apply at once, also to contacts and tickets already open; what was
        already counted stays counted. Raises :class:`RestartNeeded` (and changes nothing) when
        the change alters the shape of the state (:func:`shape_change`: windows, channels,
        queues, complaint categories and tags, the de-duplication window, the day, a channel
        turning between live contacts and tickets)."""
        why = shape_change(self.settings, settings)
        if why is not None:
            raise RestartNeeded(why)
        self.settings = settings
        self.calendars = {name: calendar.build() for name, calendar in settings.calendars.items()}
        self.workforce.reconfigure(settings)
        self.lateness = settings.ingest.allowed_lateness
        self._answered_retention = settings.ingest.answered_retention
        self._waiting_retention = settings.ingest.waiting_retention
        limits = settings.limits
        self._ticket_retention = limits.solved_ticket_retention
        self._max_contacts = limits.max_open_contacts
        self._max_tickets = limits.max_open_tickets
        self._max_solved = limits.max_solved_tickets
        self._max_early = limits.max_early_outcomes
        for name, ch in self.channels.items():
            ch.settings = settings.channels[name]
        self._rearm()

    def _rearm(self) -> None:
        """Rebuild the timer heap from open items (deadlines may have moved)."""
        self._timers.clear()
        for contact_id, c in self.contacts.items():
            answer = c.q.channel.settings.answer_seconds
            waiting_alone = c.answered_ts is None and not c.breached
            if waiting_alone and contact_id not in c.q.pending and answer is not None:
                self._at(instant(c.queued_ts + answer), _ANSWER, contact_id)
        self._set_below_t()
        now = self.now
        old_calendars: dict[int, Calendar] = {}
        for ch in self.channels.values():
            for q in ch.queues.values():
                old_calendars[id(q)] = q.calendar
                q.calendar = self.calendar_of(q)
        for ticket_id, t in self.tickets.items():
            if t.solved_ts is not None:
                continue
            # Business time run so far stays (under the old calendar); new targets and the
            # new calendar apply from the reload on.
            q = t.q
            old_calendar = old_calendars[id(q)]
            targets = q.channel.settings.clock_targets(t.priority)
            for index, clock in enumerate(t.clocks):
                if clock is None:
                    continue
                self._clear_risk(t, index, clock)
                if clock.running and now > clock.since:
                    clock.elapsed += old_calendar.elapsed(clock.since, now)
                    clock.since = now
                clock.target = targets[index]
            self._arm_ticket(ticket_id, t)
            self.update_paused(t)
        self._timers.extend(self._over_t_timers())
        self._forget_solved_over_cap()

    # ------------------------------------------------------------------ events

    def refuses(self, event: Event) -> Reject | None:
        """The reject the config alone decides for ``event``, whatever the clock and the state:
        an undeclared channel; a ``contact.queued`` on a channel without ``answer_seconds``; an
        undeclared queue on an event that opens something (``contact.queued``,
        ``ticket.created``, ``agent.state``). The pipeline asks before the event may move the
        replay clock, so such a line never does; :meth:`apply` decides the same again."""
        ch = self.channels.get(event.channel)
        if ch is None:
            return Reject.UNKNOWN_CHANNEL
        if type(event) not in _OPENING:  # most events: one set lookup (no ``isinstance``,
            return None  # which costs about 0.1 us a call on a msgspec class)
        settings = ch.settings
        queues: tuple[str, ...]
        if isinstance(event, AgentState):  # its envelope's queue and its list
            queues = (event.queue, *(event.queues or ()))
        else:  # the other opening types, both naming one queue
            opening = cast("ContactQueued | TicketCreated", event)
            if isinstance(opening, ContactQueued) and settings.answer_seconds is None:
                return Reject.WRONG_CHANNEL_KIND
            queues = (opening.queue,)
        for name in queues:
            if not settings.accepts_queue(name):
                return Reject.UNKNOWN_QUEUE
        return None

    def apply(self, event: Event, ts: float, token: object = None) -> Reject | None:
        """Apply one validated event with event time ``ts`` (epoch seconds).

        ``None`` also when an early outcome is held (see the module doc); ``token`` is handed
        back by :meth:`take_expired_early` if it later becomes a reject. To survive a snapshot
        the token must be msgpack-encodable plain data (e.g. ``(raw_bytes, position, source)``; a
        list or tuple comes back from a snapshot as a tuple); any other token is restored as
        ``None``."""
        if event.channel not in self.channels:
            return Reject.UNKNOWN_CHANNEL
        # a step of a timer clean-up when one is due: events that push timers without moving
        # the watermark (all at one instant) get no decision that would take it
        self._timers.tidy()
        if type(event) in _TICKET_ORDERED and self._order(event, ts, token):
            return None
        if type(event) in _REFERENCING and self._wait_for_owner(event, ts, token):
            return None
        late = self.now - self.lateness
        if ts < late and late > self.watermark:
            # Later than the allowed lateness, between two whole seconds of a replay clock
            # (which decides deadlines once a second): decide what the lateness has passed
            # first, as a live clock has, so the verdict does not depend on the fraction.
            self._decide(late)
        # usually empty: an event then pays for nothing of the holding
        if self._early and self._held_behind(event, ts, token):
            return None
        reason = self._handlers[type(event)](event, ts)
        if reason is None:
            if self._early:
                key = _item_key(event)
                if key is not None and not key[0] and key in self._early:
                    self._release_early(key, after=ts)  # an earlier event came: try later ones
            return None
        return self._not_applied(event, ts, token, reason)

    def _not_applied(self, event: Event, ts: float, token: object, reason: Reject) -> Reject | None:
        """A handler did not apply ``event``: hold it, judge it as it stands, or refuse it."""
        key = _item_key(event)
        if key is None:
            self._waits = False
            return reason
        if self._max_early == 0:  # nothing is ever held: judged as it stands, as when full
            if self._waits:
                self._waits = False
                return self._apply_final(event, ts)
            return reason
        return self._hold_refused(key, event, ts, token, reason)

    def _held_behind(self, event: Event, ts: float, token: object) -> bool:
        """An outcome of the open item stamped at or before ``event`` waits for an earlier
        event: ``event`` waits behind it (``True``: held), or, if it cannot, those go first."""
        key = _item_key(event)
        if key is None or key not in self._early or not self._behind(key, ts):
            return False
        if (
            self._may_wait(ts)
            and self._hold(key, event, ts, token, Reject.INVALID_TRANSITION) is None
        ):
            return True
        self._release_early(key, until=ts)
        return False

    def _hold_refused(
        self, key: HeldKey, event: Event, ts: float, token: object, reason: Reject
    ) -> Reject | None:
        """Hold an outcome its item refused now, if an earlier event of the item may change
        that; ``None`` when held."""
        if self._waits:
            # an earlier event of the item may still come: hold it, or judge it as it stands
            self._waits = False
            if self._hold(key, event, ts, token, reason) is None:
                return None
            return self._apply_final(event, ts)
        if reason is Reject.UNKNOWN_CONTACT or reason is Reject.UNKNOWN_TICKET:
            return self._hold(key, event, ts, token, reason)
        return reason

    def _apply_final(self, event: Event, ts: float) -> Reject | None:
        """Apply a held (or unholdable) outcome for good: no more waiting for its item."""
        self._final = True
        try:
            return self._handlers[type(event)](event, ts)
        finally:
            self._final = False

    def _behind(self, key: HeldKey, ts: float) -> bool:
        """Whether the open item ``key`` holds an outcome stamped at or before ``ts``."""
        if not self._is_open(key):
            return False
        first = self._early[key].first()
        return first is not None and first[0] <= ts

    def _may_wait(self, ts: float) -> bool:
        """Whether a handler may ask to wait for an earlier event of the item (see the module
        doc): not when applying for good, nor without lateness to wait in."""
        return not self._final and self.lateness > 0 and ts >= self.now - self.lateness

    def _wait(self) -> Reject:
        """A handler's answer for an outcome that waits for an earlier event of its item."""
        self._waits = True
        return Reject.INVALID_TRANSITION

    def _refuse(self, ts: float) -> Reject:
        """A handler's answer for an outcome its item's state refuses: it waits if it may (an
        earlier event may still change that state), else it is refused."""
        return self._wait() if self._may_wait(ts) else Reject.INVALID_TRANSITION

    def _undecided_before(self, t: Ticket, ts: float, *, change: bool = False) -> bool:
        """A running clock of ``t`` has its deadline before ``ts`` that the watermark has not
        passed: an event of the ticket stamped before that deadline (a response, a pause) may
        still arrive and stop the clock in time. ``change``: as for :meth:`_run_to`, a clock
        whose segment started at ``ts`` is not settled by the event, so it does not count."""
        watermark = self.watermark
        return any(
            clock is not None
            and clock.running
            and not clock.breached
            and watermark <= clock.deadline < ts
            and not (change and clock.since == ts)
            for clock in t.clocks
        )

    def take_expired_early(self) -> list[tuple[object, Reject]]:
        """Deferred rejects since the last call, oldest first: held early outcomes whose item
        did not open in time (``unknown_contact``/``unknown_ticket``), or that were refused
        when applied after their opening event (e.g. ``invalid_transition``). Each comes with
        the token given to :meth:`apply`; its event id is no longer remembered by the
        de-duplication window (a rejected event is judged again when redelivered). The caller
        counts, logs and dead-letters each one like an immediate reject. Call it after every
        ``apply``/``advance``/``flush``, or after a batch of them: every entry stays until it is
        taken (one that was dropped would be an event neither counted nor dead-lettered), and
        they are bounded by what can be decided between two calls, the events held then
        (``max_early_outcomes``) and the events applied since."""
        out = list(self._expired)
        self._expired.clear()
        return out

    def take_applied_late(self) -> list[tuple[object, type, float]]:
        """Held events applied since the last call (once their item opened, or the watermark
        passed them): each with the token given to :meth:`apply`, its event type and its event
        time, for the caller to count as applied then (not when it was held). Drained and
        bounded like :meth:`take_expired_early`."""
        out = list(self._applied_late)
        self._applied_late.clear()
        return out

    @property
    def early_outcomes_held(self) -> int:
        """Events held now: outcomes waiting for their item's opening event, outcomes of an open
        contact held behind an earlier event of it, ticket events held for ``ts`` order, and
        events naming a ticket or contact held until their channel is settled."""
        return self._early_count

    def _order(self, event: Event, ts: float, token: object) -> bool:
        """Hold a ticket event until the watermark passes it, so that one ticket's events apply
        in ``ts`` order whatever order they arrive in (see the module doc); ``False`` when it
        applies now, as it stands: stamped more than the lateness before the clock (every
        event of its ticket still held is stamped after it), no clock yet (a live daemon before
        its first tick: no watermark would pass it), no lateness, or no room
        (``max_early_outcomes``, or their bytes: ``HELD_BYTES_PER_OUTCOME``; an event of a ticket
        that has events held then waits behind them, or they go first, as in :meth:`apply`)."""
        size = self._may_hold(ts, token)
        if size is None:
            return False
        key = (True, cast("TicketResponded", event).ticket_id)  # every ordered type has one
        self._put_held(key, event, ts, token, size)
        return True

    def _may_hold(self, ts: float, token: object) -> int | None:
        """The token's size (:meth:`_room_for`) when the event may wait for the watermark;
        ``None`` when applying for good, without lateness or a clock, stamped more than the
        lateness before the clock, or with no room."""
        if self._final or self.lateness <= 0 or self.now == -math.inf:
            return None
        return None if ts < self.now - self.lateness else self._room_for(token)

    def _wait_for_owner(self, event: Event, ts: float, token: object) -> bool:
        """Hold a rating, complaint, survey or sentiment score naming a ticket or contact until
        the watermark passes it when an event still on its way may change the channel it
        counts on in ``ts`` order: its ticket's ``created``, its contact's ``queued`` (neither
        seen yet), or an ``ended`` or ``abandoned`` stamped before it of a contact open at its
        ``ts``. ``False`` when it applies now: nothing named, the answer settled (a ticket
        created at or before ``ts``; a contact queued after ``ts`` or closed at or before it),
        or it may not be held (:meth:`_may_hold`)."""
        ev = cast("TicketRated | ComplaintReceived | SurveyAnswered | SentimentScored", event)
        ticket_id = ev.ticket_id
        contact_id: str | None = getattr(ev, "contact_id", None)
        if ticket_id is None and contact_id is None:
            return False
        size = self._may_hold(ts, token)
        if size is None or not self._owner_may_change(ticket_id, contact_id, ts):
            return False
        self._put_held(_REFERENCES, event, ts, token, size)
        return True

    def _owner_may_change(self, ticket_id: str | None, contact_id: str | None, ts: float) -> bool:
        """Whether an event still on its way may change which channel an event stamped ``ts``
        naming this ticket and contact counts on (:meth:`_wait_for_owner`)."""
        if ticket_id is not None:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                return True  # its ``created`` may come
            if ticket.created_ts <= ts:
                return False  # counted on its ticket's channel (:meth:`_owner_channel`)
        if contact_id is None:
            return False
        if contact_id not in self.contacts and contact_id not in self._closed:
            return True  # its ``queued`` may come
        return self._open_channel(contact_id, ts) is not None  # a closer may come

    def _hold(
        self, key: HeldKey, event: Event, ts: float, token: object, reason: Reject
    ) -> Reject | None:
        if ts < self.now - self.lateness:
            return reason  # later than the lateness: its opening event cannot be waited for
        size = self._room_for(token)
        if size is None:
            self.capacity_exhausted["early_outcomes"] += 1
            return Reject.CAPACITY
        self._put_held(key, event, ts, token, size)
        return None

    def _room_for(self, token: object) -> int | None:
        """The bytes of ``token`` when one more outcome with it may be held (fewer than
        ``max_early_outcomes`` are, and its bytes fit with theirs in ``HELD_BYTES_PER_OUTCOME``
        times that); ``None`` when there is no room."""
        room = self._max_early
        if self._early_count >= room:
            return None
        size = _token_bytes(token)
        return size if self._early_bytes + size <= room * HELD_BYTES_PER_OUTCOME else None

    def _put_held(self, key: HeldKey, event: Event, ts: float, token: object, size: int) -> None:
        seq = self._early_seq
        self._early_seq = seq + 1
        item = self._early.get(key)
        if item is None:
            item = self._early[key] = HeldItem()
        item.add((ts, seq, event, token), size)
        self._early_count += 1
        self._early_bytes += size
        heapq.heappush(self._early_heap, (ts, seq, key))
        self.held_last = True

    def _expire_early(self, cutoff: float) -> None:
        """Held outcomes stamped before ``cutoff`` are judged for good, oldest first (see
        :meth:`_settle_held`)."""
        heap = self._early_heap
        while heap and heap[0][0] < cutoff:
            _, seq, key = heapq.heappop(heap)
            item = self._early.get(key)
            if item is None:
                continue  # its item opened: the entry is spent
            if seq not in item.by_seq:
                continue  # applied already: the entry is spent
            found, size = item.take(seq)
            due = [found]
            # the item's other outcomes of this instant come with it, in lifecycle order (a
            # contact's answered before its ended, whichever arrived first)
            at = found[0]
            while (entry := item.first()) is not None and entry[0] == at:
                other, other_size = item.take(entry[2])
                due.append(other)
                size += other_size
            if len(due) > 1:
                due.sort(key=lambda h: (_LIFECYCLE_RANK[type(h[2])], h[1]))
            if not item.by_seq:
                del self._early[key]
            self._early_count -= len(due)
            self._early_bytes -= size
            was_open = not key[0] and self._is_open(key)
            for one in due:
                self._settle_held(key, one)
            if was_open and key in self._early:
                # the contact's outcomes held behind this instant's, tried once all of them
                # applied (those stamped at it waited behind them too: they come first)
                self._release_early(key, after=math.nextafter(at, -math.inf))
        if len(heap) > 2 * self._early_count + 64:  # drop entries of outcomes already applied
            self._early_heap = [
                (h[0], h[1], k) for k, item in self._early.items() for h in item.by_seq.values()
            ]
            heapq.heapify(self._early_heap)

    def _defer(self, event: Event, token: object, reason: Reject) -> None:
        self.dedup.forget(event.event_id)
        self._expired.append((token, reason))

    def _settle_held(self, key: HeldKey, held: Held) -> None:
        """The watermark passed a held outcome: apply it for good if its item is open (a ticket
        event stamped before its ticket's ``created`` is then refused by its handler as
        ``unknown_ticket``), else it is an ``unknown_*`` reject. (The caller then tries again
        the outcomes of its contact held behind it: a ticket's events wait for the watermark,
        and an item that never opened has nothing they could wait behind.)"""
        ts, _, event, token = held
        if type(event) in _REFERENCING:  # counted where its contact was at ``ts``
            reason = self._apply_final(event, ts)
            if reason is None:
                self._applied(token, event)
            else:
                self._defer(event, token, reason)
            return
        is_ticket = key[0]
        is_open = self._is_open(key)
        if is_open:
            reason = self._apply_final(event, ts)
        else:
            reason = Reject.UNKNOWN_TICKET if is_ticket else Reject.UNKNOWN_CONTACT
        if reason is None:
            self._applied(token, event)
        else:
            self._defer(event, token, reason)

    def _is_open(self, key: HeldKey) -> bool:
        is_ticket, item_id = key
        return item_id in (self.tickets if is_ticket else self.contacts)

    def _applied(self, token: object, event: Event) -> None:
        self._applied_late.append((token, type(event), event.ts.timestamp()))

    def _release_early(
        self, key: HeldKey, *, until: float | None = None, after: float | None = None
    ) -> None:
        """Apply the item's held outcomes in ``ts`` order (on a tie in lifecycle order:
        answered/abandoned, ended; responded, solved, reopened; then in arrival order), up to
        the first one that still waits: it and every one after it stay held.

        - Neither bound: after the item's opening event.
        - ``until``: an event of the open item stamped ``until`` is about to apply without
          waiting behind them; those stamped at or before it come first, judged for good.
        - ``after``: an event of the item stamped ``after`` applied; those stamped after it
          are tried again (it may be the earlier event they waited for).

        An outcome held again while these apply (its contact closed: see
        :meth:`_held_for_its_item`) is not tried again now."""
        item = self._early.get(key)
        if item is None:
            return
        final = until is not None
        newer = self._early_seq  # held from here on: not tried again in this call
        aside: list[tuple[float, int, int]] = []  # stamped at or before ``after``, or newer
        # (``item.order`` is read anew each time: holding one again may rebuild it)
        while (entry := item.first()) is not None:
            ts, _, seq = entry
            if until is not None and ts > until:
                break
            heapq.heappop(item.order)
            if (after is not None and ts <= after) or seq >= newer:
                aside.append(entry)
                continue
            held_one, size = item.take(seq)
            self._early_count -= 1
            self._early_bytes -= size
            if self._try_held(held_one, final=final):  # it and every one after it wait
                item.by_seq[seq] = held_one
                item.sizes[seq] = size
                self._early_count += 1
                self._early_bytes += size
                aside.append(entry)
                break
        for entry in aside:
            heapq.heappush(item.order, entry)
        if not item.by_seq and self._early.get(key) is item:
            del self._early[key]

    def _try_held(self, held: Held, *, final: bool) -> bool:
        """Apply one held outcome taken out of its item (for good if ``final``); ``True``
        when it still waits for an earlier event of its item."""
        ts, _, event, token = held
        apply = self._apply_final if final else self._handlers[type(event)]
        reason = apply(event, ts)
        if self._waits:
            self._waits = False
            return True
        if reason is None:
            self._applied(token, event)
        elif not self._held_for_its_item(event, ts, token, reason, final=final):
            self._defer(event, token, reason)
        return False

    def _held_for_its_item(
        self, event: Event, ts: float, token: object, reason: Reject, *, final: bool
    ) -> bool:
        """A held outcome tried again found its item gone (a contact closed by the outcome
        held before it): within the lateness it is held for its item to open, as it would have
        been had it arrived now, and not refused at once (so a redelivery of it meanwhile is
        a duplicate, as in ``ts`` order). ``held_last`` stays as it was: it speaks of the
        event being applied, not of this one."""
        if final or not (reason is Reject.UNKNOWN_CONTACT or reason is Reject.UNKNOWN_TICKET):
            return False
        key = _item_key(event)
        if key is None or not self._may_wait(ts):
            return False
        held_last = self.held_last
        held = self._hold(key, event, ts, token, reason) is None
        self.held_last = held_last
        return held

    def _queue(self, ch: ChannelRuntime, name: str) -> QueueState | None:
        q = ch.queues.get(name)
        if q is None:
            q = ch.queue(name, self.wait_bounds)
            if q is not None:
                q.calendar = self.calendar_of(q)
        return q

    def _queued(self, ev: ContactQueued, ts: float) -> Reject | None:
        ch = self.channels[ev.channel]
        answer = ch.settings.answer_seconds
        if answer is None:
            return Reject.WRONG_CHANNEL_KIND
        q = self._queue(ch, ev.queue)
        if q is None:
            return Reject.UNKNOWN_QUEUE
        if ev.contact_id in self.contacts:
            return Reject.INVALID_TRANSITION
        if len(self.contacts) >= self._max_contacts:
            self.capacity_exhausted["contacts"] += 1
            return Reject.CAPACITY
        c = Contact(q, ev.contact_id, ts)
        self.contacts[ev.contact_id] = c
        deadline = instant(ts + answer)
        in_order = q.add_waiting(ev.contact_id, c)
        late = deadline < self.watermark
        if late and self.lateness > 0:
            # So late that the watermark already passed its deadline: decided once the clock is
            # the allowed lateness past its arrival (not at the next second), so that its
            # outcome delivered with it (a file written contact by contact) is judged by its ts.
            q.pending.pop(ev.contact_id, None)
            self._at(self.now, _LATE, ev.contact_id)
        elif not in_order:
            self._at(deadline, _ANSWER, ev.contact_id)  # out of order: its own timer
        q.queued += 1
        for agg in ch.windows.targets(ts):
            agg.queued += 1
        self.workforce.contact_queued(ch, q.name, ts)
        if late and self.lateness <= 0:  # nothing may wait: breached now
            self._breach_waiting(c)
        if self._early:
            self._release_early((False, ev.contact_id))
        return None

    def _answered(self, ev: ContactAnswered, ts: float) -> Reject | None:
        c = self.contacts.get(ev.contact_id)
        if c is None:
            return Reject.UNKNOWN_CONTACT
        if c.answered_ts is not None:
            return self._refuse(ts)
        q = c.q
        ch = q.channel
        answer = ch.settings.answer_seconds
        assert answer is not None
        wait = _elapsed(c.queued_ts, ts)
        in_sla = wait <= answer
        self._leave_queue(ev.contact_id, c, late_breach=not in_sla)
        c.answered_ts = ts
        self._talking[ev.contact_id] = c
        if ev.agent_id is not None:
            c.agent_id = ev.agent_id
            self.workforce.contact_answered(ch, ev.agent_id, ts, self.watermark)
        q.answered += 1
        q.answered_in_sla += in_sla
        q.wait_hist.observe(wait)
        index = bucket_of(wait)
        wait_ms = round(wait * 1000)
        for agg in ch.windows.targets(ts):
            agg.answered += 1
            agg.answered_in_sla += in_sla
            agg.wait_ms += wait_ms
            waits = agg.waits
            waits[index] = waits.get(index, 0) + 1
        return None

    def _abandoned(self, ev: ContactAbandoned | ContactEnded, ts: float) -> Reject | None:
        c = self.contacts.get(ev.contact_id)
        if c is None:
            return Reject.UNKNOWN_CONTACT
        if c.answered_ts is not None:
            return self._refuse(ts)
        q = c.q
        ch = q.channel
        settings = ch.settings
        answer = settings.answer_seconds
        assert answer is not None
        wait = _elapsed(c.queued_ts, ts)
        short = wait < settings.short_abandon_seconds
        in_sla = wait <= answer
        self._leave_queue(ev.contact_id, c, late_breach=not in_sla)
        del self.contacts[ev.contact_id]
        self._remember_closed(ev.contact_id, c, ts)
        q.abandoned += 1
        q.abandoned_short += short
        q.abandoned_in_sla += in_sla
        for agg in ch.windows.targets(ts):
            agg.abandoned += 1
            agg.abandoned_short += short
        return None

    def _ended(self, ev: ContactEnded, ts: float) -> Reject | None:
        c = self.contacts.get(ev.contact_id)
        if c is None:
            return Reject.UNKNOWN_CONTACT
        if c.answered_ts is None:
            if self._may_wait(ts):
                return self._wait()  # its ``answered`` may still come
            # Ended while still waiting: the customer left unanswered, i.e. an abandon.
            return self._abandoned(ev, ts)
        q = c.q
        handle = _elapsed(c.answered_ts, ts)
        q.handle_hist.observe(handle)
        handle_ms = round(handle * 1000)
        for agg in q.channel.windows.targets(ts):
            agg.handled += 1
            agg.handle_ms += handle_ms
        if c.agent_id is not None:
            self.workforce.contact_ended(q.channel, c.agent_id, ts, c.answered_ts, self.watermark)
        del self.contacts[ev.contact_id]
        del self._talking[ev.contact_id]
        self._remember_closed(ev.contact_id, c, ts)
        return None

    def _remember_closed(self, contact_id: str, c: Contact, ts: float) -> None:
        """Keep a closed contact's channel while an event stamped before ``ts`` may still
        arrive (a survey, score, complaint or escalation naming it: in ``ts`` order it found the
        contact open). Closings whose ``ts`` the watermark has passed are forgotten first."""
        closed = self._closed
        closed.pop(contact_id, None)
        closed[contact_id] = (c.q.channel, c.queued_ts, ts)
        cutoff = self.watermark
        while closed:
            oldest = next(iter(closed))
            if closed[oldest][2] > cutoff and len(closed) <= self._max_contacts:
                break
            del closed[oldest]

    def _leave_queue(self, contact_id: str, c: Contact, *, late_breach: bool) -> None:
        q = c.q
        del q.waiting[contact_id]
        q.pending.pop(contact_id, None)
        if c.breached:
            if q.below_t.pop(contact_id, None) is None:
                q.breached_waiting -= 1
        elif late_breach:
            # Past its deadline before the timer was due (within the allowed lateness).
            self._breach_contact(c)

    def _breach_waiting(self, c: Contact) -> None:
        """The deadline passed while the contact still waits."""
        self._breach_contact(c)
        c.q.breached_waiting += 1

    def _breach_contact(self, c: Contact) -> None:
        c.breached = True
        q = c.q
        q.pending.pop(c.contact_id, None)
        q.breaches_answer += 1
        answer = q.channel.settings.answer_seconds
        assert answer is not None
        for agg in q.channel.windows.targets(instant(c.queued_ts + answer)):
            agg.breaches_answer += 1

    # ------------------------------------------------------------------ tickets

    def calendar_of(self, q: QueueState) -> Calendar:
        """The business calendar of a queue's ticket clocks (24/7 when none is configured)."""
        name = q.channel.settings.calendar_of(q.name)
        return ALWAYS if name is None else self.calendars[name]

    def _created(self, ev: TicketCreated, ts: float) -> Reject | None:
        ch = self.channels[ev.channel]
        q = self._queue(ch, ev.queue)
        if q is None:
            return Reject.UNKNOWN_QUEUE
        if ev.ticket_id in self.tickets:
            return Reject.INVALID_TRANSITION
        if len(self.tickets) - len(self._solved_order) >= self._max_tickets:
            self.capacity_exhausted["tickets"] += 1
            return Reject.CAPACITY
        priority = ev.priority or DEFAULT_PRIORITY
        fr, _, res = ch.settings.clock_targets(priority)
        t = Ticket(
            q,
            ts,
            priority,
            (Clock(fr, since=ts), None, Clock(res, since=ts)),
        )
        self.tickets[ev.ticket_id] = t
        q.created += 1
        q.tickets_open += 1
        q.awaiting_first_response += 1
        ch.open_by_priority[priority] += 1
        heapq.heappush(q.open_heap, (ts, ev.ticket_id))
        for agg in ch.windows.targets(ts):
            agg.created += 1
        self._arm_ticket(ev.ticket_id, t)
        if ev.tags and not self._complaint_tags.isdisjoint(ev.tags):
            category = next((tag for tag in ev.tags if tag in self._categories), UNCATEGORIZED)
            self._count_complaint(ch, category, ts)
        return None  # its held events apply once the watermark passes them

    def _arm_ticket(self, ticket_id: str, t: Ticket) -> None:
        """Compute each running clock's deadline and at-risk instant and set their timers."""
        for index, clock in enumerate(t.clocks):
            if clock is not None:
                self._schedule(ticket_id, t, index, clock)

    def _schedule(self, ticket_id: str, t: Ticket, index: int, clock: Clock) -> None:
        target = clock.target
        if not clock.running or target is None:
            clock.deadline = clock.risk_at = math.inf
            return
        calendar = t.q.calendar
        since = clock.since
        remaining = target - clock.elapsed  # below 0: the deadline was before ``since``
        clock.deadline = shift(calendar, since, remaining)
        # A breached clock's deadline is armed too: a resolution clock restarted by a reopen
        # after a breach (``carried``) is at risk before its new deadline like any other, and at
        # that deadline it is no longer at risk (its ticket's breach was counted once already).
        self._at(clock.deadline, _DEADLINE_KIND[index], ticket_id)
        lead = t.q.channel.settings.lead(index, target)
        # A clock that passed a deadline of its own is never at risk again, also when a priority
        # change or a resume gives it a later deadline: its breach is counted.
        if lead is None or clock.risk or (clock.breached and not clock.carried):
            clock.risk_at = math.inf
            return
        clock.risk_at = shift(calendar, since, remaining - lead)
        self._at(clock.risk_at, _RISK_KIND[index], ticket_id)

    def _responded(self, ev: TicketResponded, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None or ts < t.created_ts:  # in ``ts`` order, no ticket yet
            return Reject.UNKNOWN_TICKET
        if self._may_wait(ts) and self._undecided_before(t, ts):
            return self._wait()
        t.responses += 1
        if t.responses == 1:
            t.q.fr_hist.observe(_elapsed(t.created_ts, ts))
            if t.solved_ts is None:
                t.q.awaiting_first_response -= 1
        for index in (0, 1):  # the first response, and the next reply if one runs
            clock = t.clocks[index]
            if clock is None or clock.stopped:
                continue
            if index == 1 and clock.running and clock.since > ts and clock.elapsed == 0:
                continue  # started by a customer reply stamped after this response
            if t.solved_ts is not None:  # answered while solved: nothing counts, it just ends
                self._drop_clock(clock)
                continue
            self._stop_clock(t, index, clock, ts)
        self.update_paused(t)
        return None

    def _customer_replied(self, ev: TicketCustomerReplied, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None or ts < t.created_ts:  # in ``ts`` order, no ticket yet
            return Reject.UNKNOWN_TICKET
        current = t.clocks[1]
        if t.solved_ts is not None or (current is not None and not current.stopped):
            return None  # solved (a reopen event reopens it), or a next-reply clock runs
        target = t.q.channel.settings.clock_targets(t.priority)[1]
        clock = Clock(target, since=ts)
        t.clocks = (t.clocks[0], clock, t.clocks[2])
        if NEXT_REPLY in t.q.channel.settings.paused_by(t.status):
            clock.since = math.nan
        self._schedule(ev.ticket_id, t, 1, clock)
        self.update_paused(t)
        return None

    def _status_changed(self, ev: TicketStatusChanged, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None or ts < t.created_ts:  # in ``ts`` order, no ticket yet
            return Reject.UNKNOWN_TICKET
        if t.solved_ts is not None:
            if ts < t.solved_ts:  # stamped while it was open: the solve stopped its clocks
                t.status = ev.status
                return None
            return self._refuse(ts)  # a reopen may still come
        if self._may_wait(ts) and self._undecided_before(t, ts, change=True):
            return self._wait()
        t.status = ev.status
        paused = t.q.channel.settings.paused_by(ev.status)
        for index, clock in enumerate(t.clocks):
            if clock is None or clock.stopped:
                continue
            if clock.running and index in paused:
                # a pause ends the segment: a deadline before ``ts`` (set by a priority change
                # or a resume at this very instant) is a breach, stamped at it
                self._run_to(t, index, clock, ts)
                clock.since = math.nan
                self._clear_risk(t, index, clock)
                clock.deadline = clock.risk_at = math.inf
            elif clock.paused and index not in paused:
                self._settle(t, index, clock, ts)  # one _over_while_paused has not decided yet
                clock.since = ts
                self._schedule(ev.ticket_id, t, index, clock)
        self.update_paused(t)
        return None

    def _priority_changed(self, ev: TicketPriorityChanged, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None or ts < t.created_ts:  # in ``ts`` order, no ticket yet
            return Reject.UNKNOWN_TICKET
        if self._may_wait(ts) and self._undecided_before(t, ts, change=True):
            return self._wait()
        old = t.priority
        if ev.priority == old:
            return None
        t.priority = ev.priority
        ch = t.q.channel
        if t.solved_ts is not None:
            return None  # its clocks still running take the new target if it is reopened
        ch.open_by_priority[old] -= 1
        ch.open_by_priority[ev.priority] += 1
        targets = ch.settings.clock_targets(ev.priority)
        for index, clock in enumerate(t.clocks):
            if clock is None or clock.stopped:
                continue
            if clock.running:
                self._run_to(t, index, clock, ts, change=True)
            self._clear_risk(t, index, clock)
            clock.target = targets[index]
            self._schedule(ev.ticket_id, t, index, clock)
            if clock.paused:
                self._over_while_paused(ev.ticket_id, t, index, clock, ts)
        self.update_paused(t)
        return None

    def _over_while_paused(
        self, ticket_id: str, t: Ticket, index: int, clock: Clock, ts: float
    ) -> None:
        """A priority change at ``ts`` gave a paused clock a target below the business time it
        has already run: its deadline (change time + new target - run, walking back in business
        time) is already past, while the ticket is open, so it breached there. Decided as a
        running clock's past deadline is, by its timer (a second change at the same instant
        still counts alone), or by the next event that resumes or stops the clock."""
        target = clock.target
        if target is None or clock.breached or clock.elapsed <= target:
            return
        clock.deadline = shift(t.q.calendar, ts, target - clock.elapsed)
        self._at(clock.deadline, _DEADLINE_KIND[index], ticket_id)

    def _solved(self, ev: TicketSolved, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None or ts < t.created_ts:  # in ``ts`` order, no ticket yet
            return Reject.UNKNOWN_TICKET
        if t.solved_ts is not None:
            return self._refuse(ts)  # a reopen may still come
        if self._may_wait(ts) and self._undecided_before(t, ts):
            return self._wait()
        q = t.q
        ch = q.channel
        for index, clock in enumerate(t.clocks):
            if clock is None or clock.stopped:
                continue
            if index == RESOLUTION:
                self._stop_clock(t, index, clock, ts)
                continue
            # Only a response ends the first-response and next-reply clocks: they run on, and
            # breach if the ticket is open again (reopened) at their deadline. Closed, the
            # ticket is neither at risk nor overdue.
            if clock.running:
                self._run_to(t, index, clock, ts)  # a deadline passed before the solve: a breach
            else:  # paused: a deadline _over_while_paused set, not decided yet, is a breach
                self._settle(t, index, clock, ts)
            if index == 0 and clock.breached:
                q.overdue_first_response -= 1
            self._clear_risk(t, index, clock)
        # A solved ticket keeps only what a reopen needs: whether resolution ever breached (in
        # one shared, never-mutated tuple: remembered solved tickets are many), and a first-
        # response or next-reply clock still running.
        res = t.clocks[2]
        done = _SOLVED_BREACHED if res is not None and res.breached else _SOLVED
        fr, nr = (c if c is not None and not c.stopped else None for c in t.clocks[:RESOLUTION])
        t.clocks = done if fr is None and nr is None else (fr, nr, done[RESOLUTION])
        t.solved_ts = ts
        self.update_paused(t)  # solved: not paused, whatever its clocks still running
        first_contact = t.responses <= 1 and not t.reopened
        q.solved += 1
        q.solved_first_contact += first_contact
        q.tickets_open -= 1
        q.awaiting_first_response -= t.responses == 0
        ch.open_by_priority[t.priority] -= 1
        q.res_hist.observe(_elapsed(t.created_ts, ts))
        for agg in ch.windows.targets(ts):
            agg.solved += 1
            agg.solved_first_contact += first_contact
        self._solved_order[ev.ticket_id] = None
        self._drop_solved_heads(q)
        self._forget_solved_over_cap()
        return None

    def _drop_solved_heads(self, q: QueueState) -> None:
        """Keep the head of ``q.open_heap`` an open ticket (the oldest); compact the heap when
        solved entries make it more than twice the open count."""
        heap = q.open_heap
        tickets = self.tickets
        while heap:
            t = tickets.get(heap[0][1])
            if t is not None and t.solved_ts is None and t.q is q:
                break
            heapq.heappop(heap)
        if len(heap) > 2 * q.tickets_open + 64:
            q.open_heap = [
                (t.created_ts, tid)
                for tid, t in tickets.items()
                if t.q is q and t.solved_ts is None
            ]
            heapq.heapify(q.open_heap)

    def _forget_solved_over_cap(self) -> None:
        """Past ``limits.max_solved_tickets`` the oldest solved ticket is forgotten."""
        solved = self._solved_order
        while len(solved) > self._max_solved:
            ticket_id = next(iter(solved))
            del solved[ticket_id]
            del self.tickets[ticket_id]
            self.capacity_exhausted["solved_tickets"] += 1

    def _reopened(self, ev: TicketReopened, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None or ts < t.created_ts:  # in ``ts`` order, no ticket yet
            return Reject.UNKNOWN_TICKET
        if t.solved_ts is None:
            return self._refuse(ts)  # its solve may still come
        t.solved_ts = None
        t.reopened = True
        t.status = "open"
        del self._solved_order[ev.ticket_id]
        q = t.q
        ch = q.channel
        q.tickets_open += 1
        q.awaiting_first_response += t.responses == 0
        q.reopened += 1
        ch.open_by_priority[t.priority] += 1
        heapq.heappush(q.open_heap, (t.created_ts, ev.ticket_id))
        for agg in ch.windows.targets(ts):
            agg.reopened += 1
        # The resolution clock restarts from the reopen (a ticket breaches it at most once);
        # a first-response or next-reply clock that ran on while it was solved goes on.
        old = t.clocks[2]
        res = Clock(ch.settings.clock_targets(t.priority)[2], since=ts)
        res.breached = res.carried = old is not None and old.breached
        fr, nr, _ = t.clocks
        t.clocks = (fr, nr, res)
        for index, clock in ((0, fr), (NEXT_REPLY, nr)):
            if clock is not None and not clock.stopped:
                self._resume_kept(ev.ticket_id, t, index, clock, ts)
        self._schedule(ev.ticket_id, t, 2, res)
        self.update_paused(t)
        return None

    def _resume_kept(self, ticket_id: str, t: Ticket, index: int, clock: Clock, ts: float) -> None:
        """A first-response or next-reply clock that ran on while its ticket was solved, at the
        reopen ``ts``: it takes the priority's target now (paused, it resumes: the reopen sets
        the status to open); its deadline is re-armed, at risk at once if ``ts`` is in its lead
        time; a deadline that passed while the ticket was solved ends it with no breach (the
        ticket was not open then). One breached before the solve runs on, overdue again."""
        clock.target = t.q.channel.settings.clock_targets(t.priority)[index]
        if clock.paused:
            clock.since = ts
        self._schedule(ticket_id, t, index, clock)
        if clock.breached:  # breached while open before the solve, still unanswered: overdue
            t.q.overdue_first_response += index == 0
        elif clock.deadline < ts:
            self._drop_clock(clock)
        elif clock.risk_at <= ts and not clock.risk:
            clock.risk = True
            t.q.at_risk[index] += 1

    @staticmethod
    def _drop_clock(clock: Clock) -> None:
        """End a clock of a solved ticket: its deadline passed, or a response came, while the
        ticket was closed: no breach, never at risk again."""
        clock.stopped = True
        clock.since = math.nan
        clock.deadline = clock.risk_at = math.inf

    def _settle(self, t: Ticket, index: int, clock: Clock, ts: float) -> None:
        """A running clock whose deadline is before ``ts`` breached there (the timer may not
        have been due yet, within the allowed lateness); one whose ticket breached it before (a
        reopened resolution clock) is only no longer at risk."""
        if ts > clock.deadline:
            if clock.breached:
                clock.carried = False  # now past a deadline of its own too
                self._clear_risk(t, index, clock)
            else:
                self._breach_clock(t, index, clock)

    def _run_to(
        self, t: Ticket, index: int, clock: Clock, ts: float, *, change: bool = False
    ) -> None:
        """A running clock's segment ends at ``ts``: its business time is added to ``elapsed``
        (a deadline passed before ``ts`` is a breach first) and the next segment starts there.
        ``change``: a priority change. At one instant only the last priority change counts, so
        a segment that started at ``ts`` (a priority change at the same instant set its target)
        settles nothing: its deadline, if already past, is decided by its timer unless the
        priority changes again. A pause (no ``change``) settles it."""
        if not (change and clock.since == ts):
            self._settle(t, index, clock, ts)
        clock.elapsed += t.q.calendar.elapsed(clock.since, ts)
        clock.since = ts

    def _stop_clock(self, t: Ticket, index: int, clock: Clock, ts: float) -> None:
        """The clock stops at ``ts`` for good: a breach (once, stamped at the deadline) if
        ``ts`` is past it; no longer at risk."""
        if clock.running:
            self._run_to(t, index, clock, ts)
        else:  # paused: a deadline _over_while_paused set, not decided yet, is a breach
            self._settle(t, index, clock, ts)
        if index == 0 and clock.breached:
            t.q.overdue_first_response -= 1
        self._clear_risk(t, index, clock)
        clock.stopped = True
        clock.since = math.nan
        clock.deadline = clock.risk_at = math.inf

    def _breach_clock(self, t: Ticket, index: int, clock: Clock) -> None:
        clock.breached = True
        self._clear_risk(t, index, clock)
        q = t.q
        q.breaches[index] += 1
        deadline = clock.deadline
        if index == 0:
            q.overdue_first_response += 1
            for agg in q.channel.windows.targets(deadline):
                agg.breaches_first_response += 1
        elif index == 1:
            for agg in q.channel.windows.targets(deadline):
                agg.breaches_next_reply += 1
        else:
            for agg in q.channel.windows.targets(deadline):
                agg.breaches_resolution += 1

    @staticmethod
    def _clear_risk(t: Ticket, index: int, clock: Clock) -> None:
        if clock.risk:
            clock.risk = False
            t.q.at_risk[index] -= 1

    @staticmethod
    def update_paused(t: Ticket) -> None:
        """``support_tickets_paused``: an open ticket with a paused clock, whose every clock
        with a target that is not stopped is paused. A clock without a target at the ticket's
        priority still keeps its time and is paused by its status, so it can make a ticket
        paused, but one running does not keep it from being paused."""
        active = [c for c in t.clocks if c is not None and not c.stopped]
        paused = (
            t.solved_ts is None
            and any(c.paused for c in active)
            and all(c.paused for c in active if c.target is not None)
        )
        if paused != t.paused:
            t.paused = paused
            t.q.tickets_paused += 1 if paused else -1

    # ------------------------------------------------------------------ customer voice

    def _owner_channel(
        self, ev: TicketRated | ComplaintReceived | SurveyAnswered | SentimentScored, ts: float
    ) -> ChannelRuntime:
        """The channel recorded when the referenced ticket/contact was opened, else the event's
        (a ticket created at or before ``ts``; a contact only while open at ``ts``,
        :meth:`_open_channel`)."""
        ticket = self.tickets.get(ev.ticket_id) if ev.ticket_id else None
        if ticket is not None and ticket.created_ts <= ts:
            return ticket.q.channel
        contact_id: str | None = getattr(ev, "contact_id", None)
        owner = self._open_channel(contact_id, ts) if contact_id else None
        return owner if owner is not None else self.channels[ev.channel]

    def _open_channel(self, contact_id: str, ts: float) -> ChannelRuntime | None:
        """The channel of the contact if it is open at ``ts`` in ``ts`` order, whatever the
        order its events came in: queued at or before ``ts``, and not closed at or before
        ``ts`` (by an applied ``ended`` or ``abandoned``, remembered while within the allowed
        lateness, or by a held one)."""
        contact = self.contacts.get(contact_id)
        if contact is not None and contact.queued_ts <= ts:
            if self._early:
                item = self._early.get((False, contact_id))
                if item is not None and item.first_closer() <= ts:
                    return None
            return contact.q.channel
        closed = self._closed.get(contact_id)  # an earlier contact of the same id
        if closed is None:
            return None
        channel, queued_ts, closed_ts = closed
        return channel if queued_ts <= ts < closed_ts and closed_ts > self.watermark else None

    def _rated(self, ev: TicketRated, ts: float) -> Reject | None:
        self._count_csat(self._owner_channel(ev, ts), ev.rating, ts)
        return None

    @staticmethod
    def _count_csat(ch: ChannelRuntime, rating: int, ts: float) -> None:
        """A CSAT answer (``ticket.rated``, or ``survey.answered`` with ``survey: csat``)."""
        ch.ratings[rating] += 1
        ch.voice.surveys["csat"][rating] += 1
        satisfied = rating >= 4
        for agg in ch.windows.targets(ts):
            agg.ratings += 1
            agg.satisfied += satisfied

    def _survey(self, ev: SurveyAnswered, ts: float) -> Reject | None:
        ch = self._owner_channel(ev, ts)
        score = ev.score
        if ev.survey == "csat":
            self._count_csat(ch, score, ts)
            return None
        ch.voice.surveys[ev.survey][score] += 1
        if ev.survey == "nps":
            promoter = score >= PROMOTER_MIN
            detractor = score <= DETRACTOR_MAX
            for agg in ch.windows.targets(ts):
                agg.nps_responses += 1
                agg.nps_promoters += promoter
                agg.nps_detractors += detractor
        else:
            for agg in ch.windows.targets(ts):
                agg.ces_responses += 1
                agg.ces_sum += score
        return None

    def _bot_session(self, ev: BotSessionEnded, ts: float) -> Reject | None:
        ch = self.channels[ev.channel]
        outcome = ev.outcome
        ch.voice.bot[outcome] += 1
        contained = outcome == "contained"
        escalated = outcome == "escalated"
        for agg in ch.windows.targets(ts):
            agg.bot_sessions += 1
            agg.bot_contained += contained
            agg.bot_escalated += escalated
        if escalated and ev.contact_id:
            owner = self._open_channel(ev.contact_id, ts)
            if owner is not None:
                owner.voice.escalations_in += 1
        return None

    def _sentiment(self, ev: SentimentScored, ts: float) -> Reject | None:
        ch = self._owner_channel(ev, ts)
        cuts = self.settings.sentiment
        pole = polarity(ev.score, cuts.negative_below, cuts.positive_above)
        ch.voice.sentiment[pole] += 1
        negative = pole == "negative"
        positive = pole == "positive"
        for agg in ch.windows.targets(ts):
            agg.sentiments += 1
            agg.sentiment_negative += negative
            agg.sentiment_positive += positive
        return None

    # ------------------------------------------------------------------ workforce

    def _agent_state(self, ev: AgentState, ts: float) -> Reject | None:
        return self.workforce.apply(ev, ts, self.watermark)

    def _complaint(self, ev: ComplaintReceived, ts: float) -> Reject | None:
        self._count_complaint(self._owner_channel(ev, ts), self._category(ev.category), ts)
        return None

    def _category(self, name: str | None) -> str:
        """The ``category`` label: bounded by the configured list, or (with none configured) by
        the first ``max_complaint_categories`` distinct valid values seen."""
        if name is None:
            return UNCATEGORIZED
        if self._categories:
            return name if name in self._categories else OTHER
        if any(name in ch.complaints for ch in self.channels.values()):
            return name
        seen = set().union(*(ch.complaints for ch in self.channels.values()))
        limit = self.settings.ingest.max_complaint_categories
        if len(seen - {UNCATEGORIZED, OTHER}) >= limit or not _LABEL_VALUE.fullmatch(name):
            return OTHER
        return name

    @staticmethod
    def _count_complaint(ch: ChannelRuntime, category: str, ts: float) -> None:
        ch.complaints[category] = ch.complaints.get(category, 0) + 1
        for agg in ch.windows.targets(ts):
            agg.complaints += 1
