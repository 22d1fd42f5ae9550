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
all ticket clocks use one timer heap, rebuilt from the open items when spent entries make it
more than twice the size it had after the last rebuild.

An outcome that arrives before its item's opening event (an ``answered`` before its ``queued``, a
``solved`` before its ``created``) is *held* while the clock is within ``allowed_lateness`` of its
``ts``. When the opening event comes, the held outcomes of that item are applied right after it,
in ``ts`` order, so the numbers equal those of the events in order. A held outcome whose item
has not opened once ``now - allowed_lateness > ts`` (or at ``flush``) becomes an
``unknown_contact``/``unknown_ticket`` reject; the caller collects these deferred rejects with
:meth:`Engine.take_expired_early` together with the opaque token it passed to :meth:`Engine.apply`.

Memory is bounded by the ``limits`` settings (``docs/metrics.md``, "Bounds"): past a bound a new
item is refused with ``Reject.CAPACITY`` and counted in :attr:`Engine.capacity_exhausted`.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import deque
from collections.abc import Callable

import msgspec

from monitor.config import Settings
from monitor.engine.dedup import Deduplicator
from monitor.engine.sketch import bucket_of
from monitor.engine.state import ChannelRuntime, Contact, QueueState, Ticket, wait_bounds_for
from monitor.errors import SupportMonitorError
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
_FR_RISK, _RES_RISK, _ANSWER, _FR, _RES = range(5)
_INCLUSIVE = (_FR_RISK, _RES_RISK)
_MIN_TIMER_LIMIT = 4096  # heap entries below which spent timers are never compacted away

CAPACITY_KINDS = ("contacts", "tickets", "solved_tickets", "early_outcomes")
"""The ``kind`` label of ``support_monitor_capacity_exhausted_total``."""

MAX_HELD_TOKEN_BYTES = 4096
"""An early outcome whose token (raw message) is larger than this is not held but rejected at
once, so held outcomes take at most ``max_early_outcomes`` x 4 KiB of raw bytes."""


def _token_bytes(token: object) -> int:
    """Bytes of the str/bytes parts of a plain-data token such as ``(raw, position, source)``."""
    if isinstance(token, bytes | str):
        return len(token)
    if isinstance(token, tuple | list):
        return sum(len(part) for part in token if isinstance(part, bytes | str))
    return 0


_CONTACT_OUTCOMES = (ContactAnswered, ContactAbandoned, ContactEnded)
_TICKET_OUTCOMES = (TicketResponded, TicketSolved, TicketReopened)
_LIFECYCLE_RANK: dict[type, int] = {
    ContactAnswered: 0,
    ContactAbandoned: 0,
    ContactEnded: 1,
    TicketResponded: 0,
    TicketSolved: 1,
    TicketReopened: 2,
}
"""Held outcomes of one item stamped at the same ``ts`` are applied in this order."""

HeldKey = tuple[bool, str]
"""(is a ticket, contact or ticket id): whose opening event a held outcome waits for."""
Held = tuple[float, int, Event, object]
"""A held outcome: (ts, arrival sequence number, event, the caller's token)."""

UNCATEGORIZED = "uncategorized"
OTHER = "other"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


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
    """Held early outcomes, item by item in holding order of the items, each item's in
    arrival order."""
    early_seq: int
    """The sequence number the next held outcome gets."""


class RestartNeeded(SupportMonitorError):  # noqa: N818 - a verdict, read as "restart needed: ..."
    """A reload that changes the shape of the state; the running config stays."""


class Engine:
    """All metric state of one daemon (or one replay)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ingest = settings.ingest
        self.lateness = ingest.allowed_lateness
        self._answered_retention = ingest.answered_retention
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
        self.channels: dict[str, ChannelRuntime] = {
            name: ChannelRuntime(name, ch, spans, self.wait_bounds)
            for name, ch in settings.channels.items()
        }
        for ch in self.channels.values():  # every allowed category exported from the start
            ch.complaints = dict.fromkeys((*ingest.complaint_categories, UNCATEGORIZED, OTHER), 0)
        self.contacts: dict[str, Contact] = {}
        self._talking: dict[str, Contact] = {}  # answered, not ended; in answer order for expiry
        self.tickets: dict[str, Ticket] = {}
        self._solved_order: dict[str, None] = {}  # solved tickets still remembered, in solve order
        self.dedup = Deduplicator(ingest.dedup_max_ids, ingest.dedup_horizon)
        self._timers: list[tuple[float, int, str]] = []
        self._timer_limit = _MIN_TIMER_LIMIT
        self.now = -math.inf
        self.watermark = -math.inf
        self._next_second = -math.inf
        self._early: dict[HeldKey, list[Held]] = {}
        self._early_heap: list[tuple[float, int, HeldKey]] = []  # (ts, seq, key), lazy deletes
        self._early_count = 0
        self._early_seq = 0
        self._expired: deque[tuple[object, Reject]] = deque()
        self._applied_late: deque[tuple[object, type]] = deque()
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
        }

    # ------------------------------------------------------------------ export / restore

    def export_state(self) -> EngineState:
        """The bookkeeping of :class:`EngineState` (lists copied; held events are the live
        objects)."""
        return EngineState(
            self._next_second,
            list(self._talking),
            list(self._solved_order),
            [(key, held) for key, hs in self._early.items() for held in hs],
            self._early_seq,
        )

    def restore_state(self, state: EngineState) -> None:
        """Take over ``state`` (as :meth:`export_state` gives it). ``contacts`` must already hold
        every talking contact (``KeyError`` otherwise); the timers are not rebuilt here (call
        :meth:`rebuild_timers` once every item is restored)."""
        contacts = self.contacts
        self._talking = {cid: contacts[cid] for cid in state.talking}
        self._solved_order = dict.fromkeys(state.solved)
        early: dict[HeldKey, list[Held]] = {}
        heap: list[tuple[float, int, HeldKey]] = []
        for key, held in state.early:
            early.setdefault(key, []).append(held)
            heap.append((held[0], held[1], key))
        heapq.heapify(heap)
        self._early = early
        self._early_heap = heap
        self._early_count = len(heap)
        self._early_seq = state.early_seq
        self._next_second = state.next_second

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
        early = self._early_heap
        if early and early[0][0] < now - self.lateness:
            self._expire_early(now - self.lateness)

    def flush(self, now: float | None = None) -> None:
        """Advance to ``now`` and decide every deadline up to it (no more late events will come,
        so every held early outcome becomes a deferred reject)."""
        if now is not None:
            self.advance(now)
        self._decide(self.now)
        self._expire_early(math.inf)

    def _decide(self, watermark: float) -> None:
        """Breach every contact and ticket clock whose deadline is before the watermark; forget
        solved tickets past their retention."""
        self.watermark = watermark = max(self.watermark, watermark)
        if len(self._timers) > self._timer_limit:
            self.rebuild_timers()
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
        self._timers = timers = []
        for cid, c in self.contacts.items():
            answer = c.q.channel.settings.answer_seconds
            waiting_alone = c.answered_ts is None and not c.breached and cid not in c.q.pending
            if waiting_alone and answer is not None:
                timers.append((c.queued_ts + answer, _ANSWER, cid))
        for tid, t in self.tickets.items():
            if t.solved_ts is None:
                self._arm_ticket(tid, t, first_response=not t.fr_stopped)
        heapq.heapify(timers)
        self._timer_limit = max(_MIN_TIMER_LIMIT, 2 * len(timers))

    def _on_timer(self, when: float, kind: int, key: str) -> None:  # noqa: C901
        if kind == _ANSWER:
            c = self.contacts.get(key)
            if c is None or c.answered_ts is not None or c.breached:
                return
            answer = c.q.channel.settings.answer_seconds
            if answer is not None and c.queued_ts + answer == when:
                self._breach_waiting(c)
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
            (
                "queues",
                {k: c.queues for k, c in old.channels.items()},
                {k: c.queues for k, c in settings.channels.items()},
            ),
            (
                "ingest.complaint_categories",
                old.ingest.complaint_categories,
                settings.ingest.complaint_categories,
            ),
            ("ingest.complaint_tags", old.ingest.complaint_tags, settings.ingest.complaint_tags),
            ("ingest.dedup_max_ids", old.ingest.dedup_max_ids, settings.ingest.dedup_max_ids),
            ("ingest.dedup_horizon", old.ingest.dedup_horizon, settings.ingest.dedup_horizon),
        ):
            if before != after:
                raise RestartNeeded(f"{what} changed: restart the daemon to apply it")
        self.settings = settings
        self.lateness = settings.ingest.allowed_lateness
        self._answered_retention = settings.ingest.answered_retention
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
            if t.solved_ts is None:
                self._arm_ticket(ticket_id, t, first_response=not t.fr_stopped)
        heapq.heapify(self._timers)
        self._timer_limit = max(_MIN_TIMER_LIMIT, 2 * len(self._timers))
        self._forget_solved_over_cap()

    # ------------------------------------------------------------------ events

    def apply(self, event: Event, ts: float, token: object = None) -> Reject | None:
        """Apply one validated event with event time ``ts`` (epoch seconds).

        ``None`` also when an early outcome is held (see the module doc); ``token`` is handed
        back by :meth:`take_expired_early` if it later becomes a reject. To survive a snapshot
        the token must be msgpack-encodable plain data (e.g. ``(raw_bytes, position, source)``; a
        list or tuple comes back from a snapshot as a tuple); any other token is restored as
        ``None``."""
        if event.channel not in self.channels:
            return Reject.UNKNOWN_CHANNEL
        reason = self._handlers[type(event)](event, ts)
        if reason is None or self._max_early == 0:
            return reason
        if reason is Reject.UNKNOWN_CONTACT and isinstance(event, _CONTACT_OUTCOMES):
            return self._hold((False, event.contact_id), event, ts, token, reason)
        if reason is Reject.UNKNOWN_TICKET and isinstance(event, _TICKET_OUTCOMES):
            return self._hold((True, event.ticket_id), event, ts, token, reason)
        return reason

    def take_expired_early(self) -> list[tuple[object, Reject]]:
        """Deferred rejects since the last call, oldest first: held early outcomes whose item
        did not open in time (``unknown_contact``/``unknown_ticket``), or that were refused
        when applied after their opening event (e.g. ``invalid_transition``). Each comes with
        the token given to :meth:`apply`; its event id is no longer remembered by the
        de-duplication window (a rejected event is judged again when redelivered). The caller
        counts, logs and dead-letters each one like an immediate reject. Call it after every
        ``apply``/``advance``/``flush``; undrained, at most ``max(1024, max_early_outcomes)``
        are kept and older ones are dropped (counted as ``early_outcomes`` capacity)."""
        out = list(self._expired)
        self._expired.clear()
        return out

    def take_applied_late(self) -> list[tuple[object, type]]:
        """Held early outcomes applied since the last call, once their item opened: each with
        the token given to :meth:`apply` and its event type, for the caller to count as applied
        then (not when it was held). Drained like :meth:`take_expired_early`; undrained, at
        most ``max(1024, max_early_outcomes)`` are kept."""
        out = list(self._applied_late)
        self._applied_late.clear()
        return out

    @property
    def early_outcomes_held(self) -> int:
        """Outcomes held now, waiting for their item's opening event."""
        return self._early_count

    def _hold(
        self, key: HeldKey, event: Event, ts: float, token: object, reason: Reject
    ) -> Reject | None:
        if ts < self.now - self.lateness:
            return reason  # later than the lateness: its opening event cannot be waited for
        if _token_bytes(token) > MAX_HELD_TOKEN_BYTES:
            return reason  # outcomes are small; a big one is not held (bounds held memory)
        if self._early_count >= self._max_early:
            self.capacity_exhausted["early_outcomes"] += 1
            return Reject.CAPACITY
        seq = self._early_seq
        self._early_seq = seq + 1
        self._early.setdefault(key, []).append((ts, seq, event, token))
        self._early_count += 1
        heapq.heappush(self._early_heap, (ts, seq, key))
        self.held_last = True
        return None

    def _expire_early(self, cutoff: float) -> None:
        """Held outcomes stamped before ``cutoff`` become deferred ``unknown_*`` rejects."""
        heap = self._early_heap
        while heap and heap[0][0] < cutoff:
            _, seq, key = heapq.heappop(heap)
            held = self._early.get(key)
            if held is None:
                continue  # its item opened: the entry is spent
            for i, (_, s, event, token) in enumerate(held):
                if s == seq:
                    del held[i]
                    self._early_count -= 1
                    reason = Reject.UNKNOWN_TICKET if key[0] else Reject.UNKNOWN_CONTACT
                    self._defer(event, token, reason)
                    break
            if not held:
                del self._early[key]
        if len(heap) > 2 * self._early_count + 64:  # drop entries of outcomes already applied
            self._early_heap = [(h[0], h[1], k) for k, hs in self._early.items() for h in hs]
            heapq.heapify(self._early_heap)

    def _defer(self, event: Event, token: object, reason: Reject) -> None:
        self.dedup.forget(event.event_id)
        expired = self._expired
        if len(expired) >= max(1024, self._max_early):
            expired.popleft()
            self.capacity_exhausted["early_outcomes"] += 1
        expired.append((token, reason))

    def _release_early(self, key: HeldKey) -> None:
        """The item opened: apply its held outcomes in ``ts`` order; on a tie in lifecycle order
        (answered/abandoned, ended; responded, solved, reopened), then in arrival order."""
        held = self._early.pop(key, None)
        if held is None:
            return
        self._early_count -= len(held)
        held.sort(key=lambda h: (h[0], _LIFECYCLE_RANK[type(h[2])], h[1]))
        applied = self._applied_late
        for ts, _, event, token in held:
            reason = self._handlers[type(event)](event, ts)
            if reason is not None:
                self._defer(event, token, reason)
                continue
            if len(applied) >= max(1024, self._max_early):
                applied.popleft()
            applied.append((token, type(event)))

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
        if len(self.contacts) >= self._max_contacts:
            self.capacity_exhausted["contacts"] += 1
            return Reject.CAPACITY
        c = Contact(q, ev.contact_id, ts)
        self.contacts[ev.contact_id] = c
        if not q.add_waiting(ev.contact_id, c):
            self._at(ts + answer, _ANSWER, ev.contact_id)  # out of order: its own timer
        q.queued += 1
        for agg in ch.windows.targets(ts):
            agg.queued += 1
        if self._early:
            self._release_early((False, ev.contact_id))
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
        if len(self.tickets) - len(self._solved_order) >= self._max_tickets:
            self.capacity_exhausted["tickets"] += 1
            return Reject.CAPACITY
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
        if self._early:
            self._release_early((True, ev.ticket_id))
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
        self._solved_order[ev.ticket_id] = None
        self._forget_solved_over_cap()
        return None

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
        if t is None:
            return Reject.UNKNOWN_TICKET
        if t.solved_ts is None:
            return Reject.INVALID_TRANSITION
        t.solved_ts = None
        del self._solved_order[ev.ticket_id]
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
