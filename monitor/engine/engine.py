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
all ticket clocks use one timer heap.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable

from monitor.config import Settings
from monitor.engine.dedup import Deduplicator
from monitor.engine.sketch import bucket_of
from monitor.engine.state import ChannelRuntime, Contact, QueueState, Ticket, wait_bounds_for
from monitor.events import (
    ComplaintReceived,
    ContactAbandoned,
    ContactAnswered,
    ContactEnded,
    ContactQueued,
    Event,
    Reject,
    TicketCreated,
    TicketRated,
    TicketReopened,
    TicketResponded,
    TicketSolved,
)

# Timer kinds; at-risk timers sort before breaches at the same instant because a deadline is
# "at risk" up to and including the deadline itself, and breached only once strictly past it.
_FR_RISK, _RES_RISK, _ANSWER, _FR, _RES, _FORGET_TICKET = range(6)
_INCLUSIVE = (_FR_RISK, _RES_RISK)

UNCATEGORIZED = "uncategorized"
OTHER = "other"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class RestartNeeded(Exception):  # noqa: N818 - a verdict, read as "restart needed: ..."
    """A reload that changes the shape of the state; the running config stays."""


class Engine:
    """All metric state of one daemon (or one replay)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ingest = settings.ingest
        self.lateness = ingest.allowed_lateness
        self._answered_retention = ingest.answered_retention
        self._ticket_retention = max(ingest.answered_retention, 7 * 86400.0)
        self._complaint_tags = frozenset(ingest.complaint_tags)
        self._categories = frozenset(ingest.complaint_categories)
        self.wait_bounds = wait_bounds_for(dict(settings.channels))
        spans = settings.window_seconds
        self.channels: dict[str, ChannelRuntime] = {
            name: ChannelRuntime(name, ch, spans, self.wait_bounds)
            for name, ch in settings.channels.items()
        }
        for ch in self.channels.values():  # every allowed category exported from the start
            ch.complaints = dict.fromkeys((*ingest.complaint_categories, UNCATEGORIZED, OTHER), 0)
        self.contacts: dict[str, Contact] = {}
        self._talking: dict[str, Contact] = {}  # answered, not ended; in answer order for expiry
        self.tickets: dict[str, Ticket] = {}
        self.dedup = Deduplicator(ingest.dedup_max_ids, ingest.dedup_horizon)
        self._timers: list[tuple[float, int, str]] = []
        self.now = -math.inf
        self.watermark = -math.inf
        self._next_second = -math.inf
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
        }

    # ------------------------------------------------------------------ the clock

    def advance(self, now: float) -> None:
        """Move the clock to ``now`` (never backwards). Called per event in replay, so within a
        second it only moves the clock; each new second slides windows and decides deadlines."""
        if now <= self.now:
            return
        self.now = now
        if now >= self._next_second:
            self._next_second = math.floor(now) + 1
            for ch in self.channels.values():
                ch.windows.advance(now)
            self._decide(now - self.lateness)
            self.dedup.expire(now)
            self._forget_talking(now - self._answered_retention)

    def flush(self, now: float | None = None) -> None:
        """Advance to ``now`` and decide every deadline up to it (no more late events will come)."""
        if now is not None:
            self.advance(now)
        self._decide(self.now)

    def _decide(self, watermark: float) -> None:
        """Breach every contact and ticket clock whose deadline is before the watermark."""
        self.watermark = watermark = max(self.watermark, watermark)
        for q in self._live_queues():
            answer = q.channel.settings.answer_seconds
            assert answer is not None
            pending = q.pending
            while pending:
                c = next(iter(pending.values()))
                if c.queued_ts + answer >= watermark:
                    break
                self._breach_waiting(c)
        timers = self._timers
        while timers:
            when, kind, key = timers[0]
            if when > watermark or (when == watermark and kind not in _INCLUSIVE):
                break
            heapq.heappop(timers)
            self._on_timer(when, kind, key)

    def _on_timer(self, when: float, kind: int, key: str) -> None:  # noqa: C901, PLR0912
        if kind == _ANSWER:
            c = self.contacts.get(key)
            if c is None or c.answered_ts is not None or c.breached:
                return
            answer = c.q.channel.settings.answer_seconds
            if answer is not None and c.queued_ts + answer == when:
                self._breach_waiting(c)
            return
        if kind == _FORGET_TICKET:
            t = self.tickets.get(key)
            solved = None if t is None else t.solved_ts
            if solved is not None and solved + self._ticket_retention == when:
                del self.tickets[key]
            return
        t = self.tickets.get(key)
        if t is None or t.solved_ts is not None:
            return
        q = t.q
        settings = q.channel.settings
        if kind == _FR:
            if not t.fr_stopped and self._fr_deadline(t) == when:
                self._stop_fr(t, math.inf)
        elif kind == _RES:
            if self._res_deadline(t) == when:
                self._stop_res(t, math.inf)
        elif kind == _FR_RISK:
            deadline = self._fr_deadline(t)
            lead = settings.fr_lead
            if (
                not t.fr_stopped
                and not t.risk_fr
                and lead is not None
                and deadline - lead == when
                and deadline >= self.watermark
            ):
                t.risk_fr = True
                q.at_risk_fr += 1
        elif kind == _RES_RISK:
            lead = settings.res_lead
            if (
                not t.risk_res
                and lead is not None
                and self._res_deadline(t) - lead == when
                and self._res_deadline(t) >= self.watermark
            ):
                t.risk_res = True
                q.at_risk_res += 1

    def _forget_talking(self, cutoff: float) -> None:
        """Forget answered contacts whose ``ended`` never came (oldest answers first)."""
        talking = self._talking
        while talking:
            contact_id, c = next(iter(talking.items()))
            if c.answered_ts is None or c.answered_ts >= cutoff:
                return
            del talking[contact_id]
            del self.contacts[contact_id]

    def _at(self, when: float, kind: int, key: str) -> None:
        heapq.heappush(self._timers, (when, kind, key))

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
        the change alters the shape of the state: windows, channels, queues, complaint labels or
        the de-duplication window."""
        old = self.settings
        for what, before, after in (
            ("windows", old.windows, settings.windows),
            ("channels", list(old.channels), list(settings.channels)),
            ("queues", {k: c.queues for k, c in old.channels.items()},
             {k: c.queues for k, c in settings.channels.items()}),
            ("ingest.complaint_categories", old.ingest.complaint_categories,
             settings.ingest.complaint_categories),
            ("ingest.complaint_tags", old.ingest.complaint_tags, settings.ingest.complaint_tags),
            ("ingest.dedup_max_ids", old.ingest.dedup_max_ids, settings.ingest.dedup_max_ids),
            ("ingest.dedup_horizon", old.ingest.dedup_horizon, settings.ingest.dedup_horizon),
        ):
            if before != after:
                raise RestartNeeded(f"{what} changed: restart the daemon to apply it")
        self.settings = settings
        self.lateness = settings.ingest.allowed_lateness
        self._answered_retention = settings.ingest.answered_retention
        for name, ch in self.channels.items():
            ch.settings = settings.channels[name]
        self._rearm()

    def _rearm(self) -> None:
        """Rebuild the timer heap from open items (deadlines may have moved)."""
        self._timers = []
        for contact_id, c in self.contacts.items():
            answer = c.q.channel.settings.answer_seconds
            waiting_alone = c.answered_ts is None and not c.breached
            if waiting_alone and contact_id not in c.q.pending and answer is not None:
                self._at(c.queued_ts + answer, _ANSWER, contact_id)
        for ticket_id, t in self.tickets.items():
            q = t.q
            if t.risk_fr:
                t.risk_fr, q.at_risk_fr = False, q.at_risk_fr - 1
            if t.risk_res:
                t.risk_res, q.at_risk_res = False, q.at_risk_res - 1
            if t.solved_ts is not None:
                self._at(t.solved_ts + self._ticket_retention, _FORGET_TICKET, ticket_id)
                continue
            self._arm_ticket(ticket_id, t, first_response=not t.fr_stopped)
        heapq.heapify(self._timers)

    # ------------------------------------------------------------------ events

    def apply(self, event: Event, ts: float) -> Reject | None:
        """Apply one validated event with event time ``ts`` (epoch seconds)."""
        if event.channel not in self.channels:
            return Reject.UNKNOWN_CHANNEL
        return self._handlers[type(event)](event, ts)

    def _queue(self, ch: ChannelRuntime, name: str) -> QueueState | None:
        q = ch.queues.get(name)
        return q if q is not None else ch.queue(name, self.wait_bounds)

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
        c = Contact(q, ev.contact_id, ts)
        self.contacts[ev.contact_id] = c
        if not q.add_waiting(ev.contact_id, c):
            self._at(ts + answer, _ANSWER, ev.contact_id)  # out of order: its own timer
        q.queued += 1
        for agg in ch.windows.targets(ts):
            agg.queued += 1
        return None

    def _answered(self, ev: ContactAnswered, ts: float) -> Reject | None:
        c = self.contacts.get(ev.contact_id)
        if c is None:
            return Reject.UNKNOWN_CONTACT
        if c.answered_ts is not None:
            return Reject.INVALID_TRANSITION
        q = c.q
        ch = q.channel
        answer = ch.settings.answer_seconds
        assert answer is not None
        wait = max(0.0, ts - c.queued_ts)
        in_sla = wait <= answer
        self._leave_queue(ev.contact_id, c, late_breach=not in_sla)
        c.answered_ts = ts
        self._talking[ev.contact_id] = c
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
            return Reject.INVALID_TRANSITION
        q = c.q
        ch = q.channel
        settings = ch.settings
        answer = settings.answer_seconds
        assert answer is not None
        wait = max(0.0, ts - c.queued_ts)
        short = wait < settings.short_abandon_seconds
        in_sla = wait <= answer
        self._leave_queue(ev.contact_id, c, late_breach=not in_sla)
        del self.contacts[ev.contact_id]
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
            # Ended while still waiting: the customer left unanswered, i.e. an abandon.
            return self._abandoned(ev, ts)
        c.q.handle_hist.observe(max(0.0, ts - c.answered_ts))
        del self.contacts[ev.contact_id]
        del self._talking[ev.contact_id]
        return None

    def _leave_queue(self, contact_id: str, c: Contact, *, late_breach: bool) -> None:
        q = c.q
        del q.waiting[contact_id]
        q.pending.pop(contact_id, None)
        if c.breached:
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
        for agg in q.channel.windows.targets(c.queued_ts + answer):
            agg.breaches_answer += 1

    # ------------------------------------------------------------------ tickets

    @staticmethod
    def _fr_deadline(t: Ticket) -> float:
        fr = t.q.channel.settings.first_response_seconds
        return math.inf if fr is None else t.created_ts + fr

    @staticmethod
    def _res_deadline(t: Ticket) -> float:
        res = t.q.channel.settings.resolution_seconds
        return math.inf if res is None else t.res_start + res

    def _created(self, ev: TicketCreated, ts: float) -> Reject | None:
        ch = self.channels[ev.channel]
        q = self._queue(ch, ev.queue)
        if q is None:
            return Reject.UNKNOWN_QUEUE
        if ev.ticket_id in self.tickets:
            return Reject.INVALID_TRANSITION
        t = Ticket(q, ts, ts)
        self.tickets[ev.ticket_id] = t
        q.created += 1
        q.tickets_open += 1
        for agg in ch.windows.targets(ts):
            agg.created += 1
        self._arm_ticket(ev.ticket_id, t, first_response=True)
        if ev.tags and not self._complaint_tags.isdisjoint(ev.tags):
            category = next((tag for tag in ev.tags if tag in self._categories), UNCATEGORIZED)
            self._count_complaint(ch, category, ts)
        return None

    def _arm_ticket(self, ticket_id: str, t: Ticket, *, first_response: bool) -> None:
        settings = t.q.channel.settings
        if first_response and settings.first_response_seconds is not None:
            deadline = self._fr_deadline(t)
            self._at(deadline, _FR, ticket_id)
            lead = settings.fr_lead
            if lead is not None:
                self._at(deadline - lead, _FR_RISK, ticket_id)
        if settings.resolution_seconds is not None:
            deadline = self._res_deadline(t)
            self._at(deadline, _RES, ticket_id)
            lead = settings.res_lead
            if lead is not None:
                self._at(deadline - lead, _RES_RISK, ticket_id)

    def _responded(self, ev: TicketResponded, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None:
            return Reject.UNKNOWN_TICKET
        if t.responded:
            return None  # later replies do not move any clock
        t.responded = True
        t.q.fr_hist.observe(max(0.0, ts - t.created_ts))
        if not t.fr_stopped:
            self._stop_fr(t, ts)
        return None

    def _solved(self, ev: TicketSolved, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None:
            return Reject.UNKNOWN_TICKET
        if t.solved_ts is not None:
            return Reject.INVALID_TRANSITION
        q = t.q
        if not t.fr_stopped:
            self._stop_fr(t, ts)  # solving stops the first-response clock for good
        self._stop_res(t, ts)
        t.solved_ts = ts
        q.solved += 1
        q.tickets_open -= 1
        q.res_hist.observe(max(0.0, ts - t.created_ts))
        for agg in q.channel.windows.targets(ts):
            agg.solved += 1
        self._at(ts + self._ticket_retention, _FORGET_TICKET, ev.ticket_id)
        return None

    def _reopened(self, ev: TicketReopened, ts: float) -> Reject | None:
        t = self.tickets.get(ev.ticket_id)
        if t is None:
            return Reject.UNKNOWN_TICKET
        if t.solved_ts is None:
            return Reject.INVALID_TRANSITION
        t.solved_ts = None
        t.res_start = ts  # the resolution clock restarts from the reopen
        t.q.tickets_open += 1
        self._arm_ticket(ev.ticket_id, t, first_response=False)
        return None

    def _stop_fr(self, t: Ticket, ts: float) -> None:
        """The first-response clock stops at ``ts`` (``inf``: its deadline passed while running):
        no longer at risk, and a breach (once, stamped at the deadline) if ``ts`` is past it."""
        t.fr_stopped = True
        q = t.q
        if t.risk_fr:
            t.risk_fr = False
            q.at_risk_fr -= 1
        deadline = self._fr_deadline(t)
        if not t.breached_fr and ts > deadline:
            t.breached_fr = True
            q.breaches_fr += 1
            for agg in q.channel.windows.targets(deadline):
                agg.breaches_first_response += 1

    def _stop_res(self, t: Ticket, ts: float) -> None:
        """The same for the current resolution cycle; a ticket breaches resolution at most once."""
        q = t.q
        if t.risk_res:
            t.risk_res = False
            q.at_risk_res -= 1
        deadline = self._res_deadline(t)
        if not t.breached_res and ts > deadline:
            t.breached_res = True
            q.breaches_res += 1
            for agg in q.channel.windows.targets(deadline):
                agg.breaches_resolution += 1

    # ------------------------------------------------------------------ customer voice

    def _owner_channel(self, ev: TicketRated | ComplaintReceived) -> ChannelRuntime:
        """The channel recorded when the referenced ticket/contact was opened, else the event's."""
        ticket = self.tickets.get(ev.ticket_id) if ev.ticket_id else None
        if ticket is not None:
            return ticket.q.channel
        contact_id = getattr(ev, "contact_id", None)
        contact = self.contacts.get(contact_id) if contact_id else None
        if contact is not None:
            return contact.q.channel
        return self.channels[ev.channel]

    def _rated(self, ev: TicketRated, ts: float) -> Reject | None:
        ch = self._owner_channel(ev)
        ch.ratings[ev.rating] += 1
        satisfied = ev.rating >= 4
        for agg in ch.windows.targets(ts):
            agg.ratings += 1
            agg.satisfied += satisfied
        return None

    def _complaint(self, ev: ComplaintReceived, ts: float) -> Reject | None:
        self._count_complaint(self._owner_channel(ev), self._category(ev.category), ts)
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
