"""A deliberately simple model of the metric definitions: plain lists, everything recomputed
from event times at the end. It shares no code with the engine (only the config numbers).
The Wave 2 part (help-desk clocks, business calendars, customer voice, the ``today`` window) is
:class:`Wave2Reference` and the functions before it.

Early outcomes: the clock is the largest ``ts`` fed so far. An outcome whose contact or ticket is
not open, stamped no more than the allowed lateness before the clock, waits in a list; it is
applied (in ``ts`` order) right after its item's opening event, or counted as ``unknown_*`` once
the clock is more than the lateness past its ``ts`` (or at :meth:`Reference.finish`).

Held ends: a ``contact.ended`` of a contact that still waits, stamped no more than the lateness
before the clock, waits (its ``answered`` may come), and so does every outcome of that contact
stamped at or after it. One stamped before it applies, and the waiting ones are tried again in
``ts`` order (a tie in lifecycle order). Once the clock is more than the lateness past a waiting
one it applies as it stands (an ``ended`` of a waiting contact is an abandon).

Refused outcomes: an outcome of an open item that its state refuses, stamped no more than the
lateness before the clock, is counted as ``invalid_transition`` only once the clock is more than
the lateness past its ``ts`` (an earlier event of the item could still have come); until then its
id counts as seen, so a redelivery of it is a duplicate. Fed in order, nothing earlier comes."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

LIFECYCLE_RANK = {
    "answered": 0,
    "abandoned": 0,
    "ended": 1,
    "priority_changed": 0,
    "customer_replied": 0,
    "status_changed": 1,
    "responded": 2,
    "solved": 3,
    "reopened": 4,
}
"""Outcomes of one item waiting with the same ``ts`` are applied in lifecycle order."""

TICKET_MOVES = frozenset(
    f"ticket.{kind}"
    for kind in (
        "responded",
        "solved",
        "reopened",
        "status_changed",
        "priority_changed",
        "customer_replied",
    )
)
"""Ticket events after ``created``: within the lateness each waits until the clock is more
than the lateness past it, then they apply in ``ts`` order (a tie in lifecycle order)."""


def in_window(ts: float, now: float, span: float) -> bool:
    """The documented rule: window ``span`` at ``now`` holds ``floor(now) - ceil(span) < ts <= now``
    (``(now - span, now]`` when ``now`` and ``span`` are whole seconds)."""
    return math.floor(now) - math.ceil(span) < ts <= now


@dataclass
class ContactLife:
    channel: str
    queue: str
    queued: float
    outcome: str | None = None  # "answered" | "abandoned"
    outcome_ts: float = math.inf
    ended: float | None = None


@dataclass
class TicketLife:
    channel: str
    queue: str
    created: float
    responses: list[float] = field(default_factory=list)
    solves: list[float] = field(default_factory=list)
    reopens: list[float] = field(default_factory=list)

    @property
    def solved_now(self) -> bool:
        return len(self.solves) > len(self.reopens)

    def open_at(self, x: float) -> bool:
        """Open at the instant ``x``, its events at ``x`` applied."""
        return sum(s <= x for s in self.solves) == sum(r <= x for r in self.reopens)


@dataclass
class Reference:
    cfg: dict[str, Any]
    contacts: list[ContactLife] = field(default_factory=list)
    tickets: dict[str, TicketLife] = field(default_factory=dict)
    open_contacts: dict[str, ContactLife] = field(default_factory=dict)
    ratings: list[tuple[str, float, int]] = field(default_factory=list)
    complaints: list[tuple[str, float]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    clock: float = -math.inf
    waiting_outcomes: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    ticket_moves: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    held_ends: dict[str, list[tuple[float, int, dict[str, Any]]]] = field(default_factory=dict)
    arrivals: int = 0

    def feed(self, ev: dict[str, Any], ts: float) -> None:
        if ev["type"] in ("contact.queued", "ticket.created"):
            queue = ev.get("queue", "default")
            if queue not in self.cfg["channels"][ev["channel"]]["queues"] and queue != "default":
                self._count("unknown_queue")  # the config refuses it: the clock stays
                return
        self.clock = max(self.clock, ts)
        lateness = self.cfg["ingest"]["allowed_lateness"]
        self._apply_moves(self.clock - lateness)
        for contact_id in list(self.held_ends):
            self._try_held(contact_id, self.clock - lateness)
        for item in list(self.waiting_outcomes):
            if item[0] < self.clock - lateness:
                self._give_up(item)
        for refused in list(self.refused):
            if refused[0] < self.clock - lateness:
                self._refuse(refused)
        if ev["event_id"] in self.seen:
            return
        if ev["type"] in TICKET_MOVES and lateness > 0 and ts >= self.clock - lateness:
            self.arrivals += 1
            self.ticket_moves.append((ts, self.arrivals, ev))
            self.seen.add(ev["event_id"])
            return
        if self._holds(ev, ts, lateness):
            return
        reason = self._apply(ev, ts)
        if reason is None and ev.get("contact_id") in self.held_ends:
            self._try_held(ev["contact_id"], -math.inf, retry=True)
        if reason in ("unknown_contact", "unknown_ticket") and ts >= self.clock - lateness:
            self.arrivals += 1
            self.waiting_outcomes.append((ts, self.arrivals, ev))
            self.seen.add(ev["event_id"])
            return
        outcome = ev["type"] not in ("contact.queued", "ticket.created")
        waits = lateness > 0 and ts >= self.clock - lateness
        if reason == "invalid_transition" and outcome and waits:
            self.refused.append((ts, ev))
            self.seen.add(ev["event_id"])
            return
        if reason is None:
            self.seen.add(ev["event_id"])
            if ev["type"] in ("contact.queued", "ticket.created"):
                self._opened(ev)
        else:
            self._count(reason)

    def finish(self) -> None:
        """End of the stream: every ticket event still waiting applies; every outcome still
        waiting for its item is unknown."""
        self._apply_moves(math.inf)
        for contact_id in list(self.held_ends):
            self._try_held(contact_id, math.inf)
        for item in list(self.waiting_outcomes):
            self._give_up(item)
        for refused in list(self.refused):
            self._refuse(refused)

    def _apply_moves(self, before: float) -> None:
        """Apply the waiting ticket events stamped before ``before`` in ``ts`` order (a tie in
        lifecycle order, then arrival); one stamped before its ticket's creation, or with no
        ticket, is ``unknown_ticket``."""
        due = sorted(
            (m for m in self.ticket_moves if m[0] < before),
            key=lambda m: (m[0], LIFECYCLE_RANK[m[2]["type"].split(".")[1]], m[1]),
        )
        for move in due:
            self.ticket_moves.remove(move)
            ts, _, ev = move
            t = self.tickets.get(ev["ticket_id"])
            reason = "unknown_ticket" if t is None or ts < t.created else self._apply(ev, ts)
            if reason is not None:
                self._count(reason)
                self.seen.discard(ev["event_id"])

    def _holds(self, ev: dict[str, Any], ts: float, lateness: float, arrival: int = 0) -> bool:
        """Hold a waiting contact's ``ended``, or an outcome stamped at or after one held
        (``arrival``: its place among the arrivals, when it already has one)."""
        kind, contact_id = ev["type"], ev.get("contact_id", "")
        if kind not in ("contact.answered", "contact.abandoned", "contact.ended"):
            return False
        held = self.held_ends.get(contact_id)
        if held is None:
            life = self.open_contacts.get(contact_id)
            waits = life is not None and life.outcome is None
            if not (kind == "contact.ended" and waits and lateness > 0):
                return False
            if ts < self.clock - lateness:
                return False
            held = self.held_ends[contact_id] = []
        elif ts < min(h[0] for h in held):
            return False
        if not arrival:
            self.arrivals += 1
            arrival = self.arrivals
        held.append((ts, arrival, ev))
        self.seen.add(ev["event_id"])
        return True

    def _try_held(self, contact_id: str, before: float, *, retry: bool = False) -> None:
        """The contact's held outcomes in ``ts`` order: those stamped before ``before`` (the
        clock minus the lateness) apply as they stand; once one applied, or with ``retry`` (an
        event of the contact just applied), the later ones are tried too, up to a waiting
        contact's ``ended`` stamped at or after ``before``: it waits on, and every one after
        it. One that finds the contact gone waits for it to open again."""
        lateness = self.cfg["ingest"]["allowed_lateness"]
        held = sorted(
            self.held_ends.pop(contact_id),
            key=lambda h: (h[0], LIFECYCLE_RANK[h[2]["type"].split(".")[1]], h[1]),
        )
        keep: list[tuple[float, int, dict[str, Any]]] = []
        for ts, n, ev in held:
            life = self.open_contacts.get(contact_id)
            waits = life is not None and life.outcome is None
            passed = ts < before
            if (
                keep
                or not (passed or retry)
                or (ev["type"] == "contact.ended" and waits and not passed)
            ):
                keep.append((ts, n, ev))
                continue
            retry = True
            reason = self._apply(ev, ts)
            if reason == "unknown_contact" and ts >= self.clock - lateness:
                self.waiting_outcomes.append((ts, n, ev))
            elif reason == "invalid_transition" and ts >= self.clock - lateness:
                self.refused.append((ts, ev))
            elif reason is not None:
                self._count(reason)
                self.seen.discard(ev["event_id"])
        if keep:
            self.held_ends[contact_id] = keep

    def _refuse(self, refused: tuple[float, dict[str, Any]]) -> None:
        self.refused.remove(refused)
        self._count("invalid_transition")
        self.seen.discard(refused[1]["event_id"])

    def _count(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def _give_up(self, item: tuple[float, int, dict[str, Any]]) -> None:
        self.waiting_outcomes.remove(item)
        ev = item[2]
        self._count("unknown_contact" if ev["type"].startswith("contact.") else "unknown_ticket")
        self.seen.discard(ev["event_id"])

    def _opened(self, ev: dict[str, Any]) -> None:
        field_name = "contact_id" if ev["type"] == "contact.queued" else "ticket_id"
        mine = sorted(
            (
                w
                for w in self.waiting_outcomes
                if w[2].get(field_name) == ev[field_name]
                and w[2]["type"].split(".")[0] == ev["type"].split(".")[0]
            ),
            key=lambda w: (w[0], LIFECYCLE_RANK[w[2]["type"].split(".")[1]], w[1]),
        )
        lateness = self.cfg["ingest"]["allowed_lateness"]
        for item in mine:
            self.waiting_outcomes.remove(item)
            if self._holds(item[2], item[0], lateness, item[1]):
                continue
            reason = self._apply(item[2], item[0])
            if reason is not None:
                self._count(reason)
                self.seen.discard(item[2]["event_id"])

    def _apply(self, ev: dict[str, Any], ts: float) -> str | None:  # noqa: PLR0911
        kind, ch = ev["type"], ev["channel"]
        chans = self.cfg["channels"]
        if kind == "contact.queued":
            queue = ev.get("queue", "default")
            if queue not in chans[ch]["queues"] and queue != "default":
                return "unknown_queue"
            if ev["contact_id"] in self.open_contacts:
                return "invalid_transition"
            queued = ContactLife(ch, queue, ts)
            self.contacts.append(queued)
            self.open_contacts[ev["contact_id"]] = queued
            return None
        if kind.startswith("contact."):
            life = self.open_contacts.get(ev["contact_id"])
            if life is None:
                return "unknown_contact"
            if kind == "contact.answered":
                if life.outcome is not None:
                    return "invalid_transition"
                life.outcome, life.outcome_ts = "answered", ts
            elif kind == "contact.abandoned" or life.outcome is None:
                if life.outcome is not None:
                    return "invalid_transition"
                life.outcome, life.outcome_ts = "abandoned", ts
                del self.open_contacts[ev["contact_id"]]
            else:  # ended after answer
                life.ended = ts
                del self.open_contacts[ev["contact_id"]]
            return None
        if kind == "ticket.created":
            queue = ev.get("queue", "default")
            if queue not in chans[ch]["queues"] and queue != "default":
                return "unknown_queue"
            if ev["ticket_id"] in self.tickets:
                return "invalid_transition"
            self.tickets[ev["ticket_id"]] = TicketLife(ch, queue, ts)
            if "complaint" in ev.get("tags", []):
                self.complaints.append((ch, ts))
            return None
        if kind in ("ticket.responded", "ticket.solved", "ticket.reopened"):
            t = self.tickets.get(ev["ticket_id"])
            if t is None:
                return "unknown_ticket"
            if kind == "ticket.responded":
                t.responses.append(ts)
            elif kind == "ticket.solved":
                if t.solved_now:
                    return "invalid_transition"
                t.solves.append(ts)
            else:
                if not t.solved_now:
                    return "invalid_transition"
                t.reopens.append(ts)
            return None
        owner = ch
        if ev.get("ticket_id") in self.tickets:
            owner = self.tickets[ev["ticket_id"]].channel
        if kind == "ticket.rated":
            self.ratings.append((owner, ts, ev["rating"]))
        else:
            self.complaints.append((owner, ts))
        return None

    # ---------------------------------------------------------------- results at ``now``

    def contact_numbers(self, now: float, windows: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        chans = self.cfg["channels"]

        def bump(key: str, by: float = 1) -> None:
            out[key] = out.get(key, 0) + by

        for c in self.contacts:
            cs = chans[c.channel]
            t, short = cs["answer_seconds"], cs["short_abandon_seconds"]
            base = f"{c.channel}/{c.queue}"
            wait = c.outcome_ts - c.queued
            bump(f"{base}/queued")
            deadline = c.queued + t
            if min(c.outcome_ts, now) > deadline:
                bump(f"{base}/breaches")
                for name, span in windows.items():
                    if in_window(deadline, now, span):
                        bump(f"{c.channel}/{name}/breaches")
            if c.outcome is None:
                bump(f"{base}/waiting")
                # times are whole microseconds: so is a wait (the float difference is not)
                waited = round(now - c.queued, 6)
                out[f"{base}/oldest"] = max(out.get(f"{base}/oldest", 0), waited)
                if waited > t:
                    bump(f"{base}/breached_waiting")
                continue
            if c.outcome == "answered":
                bump(f"{base}/answered")
                bump(f"{base}/answered_in_sla", wait <= t)
            else:
                bump(f"{base}/abandoned")
                bump(f"{base}/abandoned_short", wait < short)
                bump(f"{base}/abandoned_in_sla", wait <= t)
            for name, span in windows.items():
                if in_window(c.outcome_ts, now, span):
                    key = f"{c.channel}/{name}"
                    if c.outcome == "answered":
                        bump(f"{key}/answered")
                        bump(f"{key}/in_sla", wait <= t)
                        out.setdefault(f"{key}/waits", [])  # type: ignore[arg-type]
                        out[f"{key}/waits"].append(wait)  # type: ignore[attr-defined]
                    else:
                        bump(f"{key}/abandoned")
                        bump(f"{key}/short", wait < short)
        return out

    def ticket_numbers(self, now: float) -> dict[str, float]:
        out: dict[str, float] = {}
        chans = self.cfg["channels"]

        def bump(key: str, by: float = 1) -> None:
            out[key] = out.get(key, 0) + by

        for t in self.tickets.values():
            cs = chans[t.channel]
            base = f"{t.channel}/{t.queue}"
            fr, res = cs["first_response_seconds"], cs["resolution_seconds"]
            fr_lead, res_lead = fr * 0.1, res * 0.1
            bump(f"{base}/created")
            bump(f"{base}/solved", len(t.solves))
            bump(f"{base}/open", not t.solved_now)
            # only a response ends the first-response clock; a breach counts if the ticket is
            # open at the deadline, a risk while it is open
            first = min([*t.responses[:1], math.inf])
            deadline = t.created + fr
            bump(f"{base}/fr_breach", min(first, now) > deadline and t.open_at(deadline))
            at_risk = deadline - fr_lead <= now <= deadline
            bump(f"{base}/fr_risk", first > now and not t.solved_now and at_risk)
            starts = [t.created, *t.reopens]
            ends = [*t.solves, math.inf]
            breached = any(min(e, now) > s + res for s, e in zip(starts, ends, strict=False))
            bump(f"{base}/res_breach", breached)
            current = starts[-1] + res
            bump(f"{base}/res_risk", not t.solved_now and current - res_lead <= now <= current)
        return out

    def voice_numbers(self, now: float, windows: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for ch, ts, rating in self.ratings:
            for name, span in windows.items():
                if in_window(ts, now, span):
                    out[f"{ch}/{name}/ratings"] = out.get(f"{ch}/{name}/ratings", 0) + 1
                    key = f"{ch}/{name}/satisfied"
                    out[key] = out.get(key, 0) + (rating >= 4)
        for ch, ts in self.complaints:
            out[f"{ch}/complaints"] = out.get(f"{ch}/complaints", 0) + 1
            for name, span in windows.items():
                if in_window(ts, now, span):
                    key = f"{ch}/{name}/complaints"
                    out[key] = out.get(key, 0) + 1
        return out


# ==================================================================== Wave 2: help desk, voice
#
# The Wave 2 part of the model: every ticket keeps the list of its applied events, and every
# number is recomputed from those lists at ``now``. Times are integer microseconds (exact), the
# business time of a calendar is the sum of per-day shift intervals converted with zoneinfo
# directly (each local date owns its midnight to the next; ``fold=0``; a shift keeps only the
# instants its own date owns; overlaps merged), and a clock's deadline is found by walking the
# pieces between breakpoints (status, priority and shift edges) one by one.

US = 1_000_000
CLOCK_NAMES = ("first_response", "next_reply", "resolution")
PRIORITY_NAMES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "pending", "on_hold")
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SURVEY_SCORES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
BOT_OUTCOME_NAMES = ("contained", "escalated", "abandoned")
DEFAULT_PAUSE = {"first_response": [], "next_reply": [], "resolution": ["pending"]}


def to_us(ts: float) -> int:
    """Epoch seconds (as parsed from an RFC 3339 time with microseconds) as integer µs."""
    return round(ts * US)


def bucket_key(t_us: int) -> int:
    """The one-second bucket of an instant: ``ceil(t)``."""
    return -(-t_us // US)


def local_instant(day: date, hhmm: str, zone: ZoneInfo) -> int:
    """The instant (µs) of local ``hhmm`` on ``day``, ``fold=0`` (the first of a repeated time;
    a skipped time is read with the offset before the change)."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    if (hours, minutes) == (24, 0):
        return local_instant(day + timedelta(days=1), "00:00", zone)
    moment = datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)
    return round(moment.timestamp()) * US


def day_start_before(now: float, zone_name: str, hhmm: str) -> int:
    """The latest local day start (whole epoch seconds) at or before ``now``."""
    zone = ZoneInfo(zone_name)
    today = datetime.fromtimestamp(now, zone).date()
    starts = [local_instant(today + timedelta(days=k), hhmm, zone) for k in range(-2, 2)]
    return max(s for s in starts if s <= to_us(now)) // US


def window_floors(now: float, cfg: dict[str, Any]) -> dict[str, int]:
    """Window name -> ``f``: an outcome at ``t <= now`` is in a sliding window exactly when
    ``ceil(t) > f`` (``f = floor(now) - ceil(span)``), and in ``today`` exactly when ``t >= f``
    (``f`` the latest day start: a day holds its own start)."""
    out: dict[str, int] = {}
    for name in cfg["windows"]:
        if name == "today":
            zone, start = cfg.get("timezone", "UTC"), cfg.get("day_starts_at", "00:00")
            out[name] = day_start_before(now, zone, start)
        else:
            out[name] = math.floor(now) - math.ceil(_seconds(name))
    return out


def _seconds(text: str | float) -> float:
    if not isinstance(text, str):
        return float(text)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]]


def business_intervals(cal: dict[str, Any] | None, lo: int, hi: int) -> list[tuple[int, int]]:
    """The business time of ``cal`` inside ``[lo, hi)`` (µs) as sorted disjoint intervals; all of
    it without a calendar."""
    if hi <= lo:
        return []
    if cal is None:
        return [(lo, hi)]
    zone = ZoneInfo(cal["timezone"])
    holidays = {date.fromisoformat(str(d)) for d in cal.get("holidays", [])}
    day = datetime.fromtimestamp(lo / US, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(hi / US, zone).date() + timedelta(days=1)
    raw: list[tuple[int, int]] = []
    while day <= last:
        following = day + timedelta(days=1)
        if day not in holidays:
            own_lo = local_instant(day, "00:00", zone)
            own_hi = local_instant(following, "00:00", zone)
            for text in cal["hours"].get(WEEKDAY_KEYS[day.weekday()], []):
                first, end = text.split("-")
                a = max(local_instant(day, first, zone), own_lo)
                b = min(local_instant(day, end, zone), own_hi)
                if b > a:
                    raw.append((a, b))
        day = following
    merged: list[tuple[int, int]] = []
    for a, b in sorted(raw):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return [(max(a, lo), min(b, hi)) for a, b in merged if b > lo and a < hi]


def _value_at(changes: list[tuple[int, str]], t: int) -> str:
    """The value of the last change at or before ``t`` (in application order)."""
    value = changes[0][1]
    for ts, v in changes:
        if ts <= t:
            value = v
    return value


@dataclass
class ClockCycle:
    """One run of one clock of one ticket, judged at ``now``."""

    clock: int
    start: int
    stop: int | None
    deadline: int | None = None
    """The instant at which the business time run reaches the target (``None``: not by
    ``min(stop, now)``). Found at the first instant where the clock is not paused and has run at
    least its current target; when that is a priority change or a resume that finds the clock
    already past its target, the deadline is that instant less the excess business time (the
    formula ``change + new target - run``, see :func:`walk_clock`)."""
    run: int = 0
    seen_at_stop: tuple[list[tuple[int, str]], list[tuple[int, str]]] | None = None
    """(statuses, priorities) as logged when the cycle stopped: a change logged after the stop
    at the same instant does not apply to it (events of one ticket apply in arrival order)."""
    """Business time run by ``min(stop, now)`` (or by the deadline)."""

    def breached(self, now: int) -> bool:
        horizon = now if self.stop is None else min(self.stop, now)
        return self.deadline is not None and self.deadline < horizon


@dataclass
class HelpdeskTicket:
    """The applied events of one ticket, in application order (µs, kind, value)."""

    channel: str
    queue: str
    created: float
    priority: str
    log: list[tuple[int, str, str]] = field(default_factory=list)

    def solved_now(self) -> bool:
        kinds = [k for _, k, _ in self.log]
        return kinds.count("solved") > kinds.count("reopened")

    def current_priority(self) -> str:
        changes = [v for _, k, v in self.log if k == "priority_changed"]
        return changes[-1] if changes else self.priority


def clock_targets(cs: dict[str, Any], priority: str) -> tuple[int | None, ...]:
    """(first response, next reply, resolution) targets in µs of ``priority`` on a channel."""
    policy = cs.get("priorities", {}).get(priority)
    if policy is None:
        values = [cs.get(f"{c}_seconds") for c in CLOCK_NAMES]
    else:
        values = [policy.get(c) for c in CLOCK_NAMES]
    return tuple(None if v is None else round(_seconds(v) * US) for v in values)


def warning_lead(cs: dict[str, Any], clock: int, target: int) -> int:
    """The at-risk lead (µs): the configured warning when shorter than the target, else 10%."""
    configured = cs.get(f"{CLOCK_NAMES[clock]}_warning_seconds")
    if configured is not None and round(_seconds(configured) * US) < target:
        return round(_seconds(configured) * US)
    return target // 10


def pause_statuses(cs: dict[str, Any], clock: int) -> list[str]:
    pause = {**DEFAULT_PAUSE, **cs.get("pause", {})}
    statuses: list[str] = pause[CLOCK_NAMES[clock]]
    return statuses


def business_back(cal: dict[str, Any] | None, p: int, amount: int) -> int:
    """The latest instant ``x <= p`` with ``amount`` of business time in ``[x, p)``."""
    if amount <= 0 or cal is None:
        return p - max(amount, 0)
    run = 0
    for a, b in reversed(business_intervals(cal, p - 30 * 86400 * US, p)):
        if run + (b - a) >= amount:
            return b - (amount - run)
        run += b - a
    return -(2**62)  # not within 30 days: before anything in a test stream (they span 5 days)


def walk_clock(  # noqa: PLR0917
    cycle: ClockCycle,
    now: int,
    cs: dict[str, Any],
    cal: dict[str, Any] | None,
    statuses: list[tuple[int, str]],
    priorities: list[tuple[int, str]],
) -> None:
    """Fill ``cycle.deadline`` and ``cycle.run`` by walking every piece of ``[start, horizon]``
    on which status, priority and business hours are constant."""
    horizon = now if cycle.stop is None else min(cycle.stop, now)
    business = business_intervals(cal, cycle.start, horizon)
    cuts = {cycle.start, horizon}
    cuts.update(ts for ts, _ in [*statuses, *priorities] if cycle.start < ts < horizon)
    for a, b in business:
        cuts.update((a, b))
    points = sorted(c for c in cuts if cycle.start <= c <= horizon)
    paused_by = pause_statuses(cs, cycle.clock)
    changes = {ts for ts, _ in priorities[1:]}
    run = 0

    def reached(p: int) -> bool:
        """The clock has run its target at ``p``: running, or paused when a priority change at
        ``p`` sets a target below the time already run (its deadline is then already past)."""
        target = clock_targets(cs, _value_at(priorities, p))[cycle.clock]
        if target is None:
            return False
        if _value_at(statuses, p) in paused_by:
            return p in changes and run > target
        return run >= target

    def deadline_at(p: int) -> int:
        """The deadline when the target is found reached at ``p``: ``p`` less the business
        time run beyond the target (the deadline formula ``p + target - run`` in business time,
        read backwards when a priority change or a resume finds the clock past its target)."""
        target = clock_targets(cs, _value_at(priorities, p))[cycle.clock]
        assert target is not None
        return business_back(cal, p, run - target)

    for p, q in itertools.pairwise(points):
        if reached(p):
            cycle.deadline, cycle.run = deadline_at(p), run
            return
        target = clock_targets(cs, _value_at(priorities, p))[cycle.clock]
        running = _value_at(statuses, p) not in paused_by and any(a <= p < b for a, b in business)
        if running:
            if target is not None and run + (q - p) > target:
                cycle.deadline, cycle.run = p + (target - run), target
                return
            run += q - p
    cycle.run = run
    if reached(horizon):
        cycle.deadline = deadline_at(horizon)


def ticket_cycles(
    t: HelpdeskTicket, now: int, cs: dict[str, Any], cal: dict[str, Any] | None
) -> tuple[list[ClockCycle], str]:
    """Every clock run of the ticket (first response; next-reply cycles; resolution from the
    creation and from each reopen), judged at ``now``, and the status at ``now``."""
    created = to_us(t.created)
    statuses = [(created, "open")]
    priorities = [(created, t.priority)]
    fr = ClockCycle(0, created, None)
    cycles = [fr]
    next_reply: ClockCycle | None = None
    resolution = ClockCycle(2, created, None)
    cycles.append(resolution)
    solved = False
    for ts, kind, value in t.log:
        if kind == "status_changed":
            statuses.append((ts, value))
        elif kind == "priority_changed":
            priorities.append((ts, value))
        elif kind == "customer_replied" and not solved:
            if next_reply is not None:
                # one whose deadline passed while the ticket was solved ended there: a reply
                # after the reopen starts a new one
                probe = ClockCycle(1, next_reply.start, None)
                walk_clock(probe, ts, cs, cal, statuses, priorities)
                lapsed = probe.deadline
                if lapsed is not None and lapsed < ts and not _open_at(t, lapsed):
                    next_reply = None
            if next_reply is None:
                next_reply = ClockCycle(1, ts, None)
                cycles.append(next_reply)
        elif kind == "responded":  # only a response ends first response and next reply
            seen = (list(statuses), list(priorities))
            if fr.stop is None:
                fr.stop, fr.seen_at_stop = ts, seen
            if next_reply is not None:
                next_reply.stop, next_reply.seen_at_stop, next_reply = ts, seen, None
        elif kind == "solved":
            solved = True
            resolution.stop, resolution.seen_at_stop = ts, (list(statuses), list(priorities))
        elif kind == "reopened":
            solved = False
            statuses.append((ts, "open"))
            resolution = ClockCycle(2, ts, None)
            cycles.append(resolution)
    for cycle in cycles:
        known = cycle.seen_at_stop or (statuses, priorities)
        walk_clock(cycle, now, cs, cal, *known)
        deadline = cycle.deadline
        if cycle.clock != 2 and deadline is not None and not _open_at(t, deadline):
            # its deadline passed while the ticket was solved: it ended there, counting nothing
            cycle.stop = deadline if cycle.stop is None else min(cycle.stop, deadline)
            cycle.deadline = None
    return cycles, _value_at(statuses, now)


def _open_at(t: HelpdeskTicket, x: int) -> bool:
    """The ticket is open at ``x`` (µs), its events at ``x`` applied."""
    kinds = [k for ts, k, _ in t.log if ts <= x]
    return kinds.count("solved") == kinds.count("reopened")


Row = tuple[str, tuple[tuple[str, str], ...]]
"""A metric family and its sorted labels, as in ``monitor.engine.readout.series``."""


def _row(name: str, **labels: str) -> Row:
    return name, tuple(sorted(labels.items()))


@dataclass
class Wave2Reference(Reference):
    """:class:`Reference` plus the Wave 2 events: ticket status, priority and customer replies
    (with the applied ticket events kept per ticket), surveys, bot sessions and sentiment."""

    helpdesk: dict[str, HelpdeskTicket] = field(default_factory=dict)
    surveys: list[tuple[str, int, str, int]] = field(default_factory=list)
    bots: list[tuple[str, int, str]] = field(default_factory=list)
    escalations: dict[str, int] = field(default_factory=dict)
    sentiments: list[tuple[str, int, float]] = field(default_factory=list)

    def feed(self, ev: dict[str, Any], ts: float) -> None:
        """An event whose fields fail decoding (``invalid_value``, ``wrong_type``) is rejected
        before its time is read: it does not move the clock."""
        bad = _invalid(ev)
        if bad is not None:
            self._count(bad)
            return
        super().feed(ev, ts)

    def _apply(self, ev: dict[str, Any], ts: float) -> str | None:  # noqa: PLR0911
        kind = ev["type"]
        if kind in ("ticket.status_changed", "ticket.priority_changed", "ticket.customer_replied"):
            t = self.helpdesk.get(ev["ticket_id"])
            if t is None:
                return "unknown_ticket"
            if kind == "ticket.status_changed" and t.solved_now():
                return "invalid_transition"
            value = ev.get("status") or ev.get("priority") or ""
            t.log.append((to_us(ts), kind.split(".")[1], value))
            return None
        if kind == "survey.answered":
            owner = self._owner(ev)
            self.surveys.append((owner, to_us(ts), ev["survey"], ev["score"]))
            if ev["survey"] == "csat":
                self.ratings.append((owner, ts, ev["score"]))
            return None
        if kind == "bot.session_ended":
            self.bots.append((ev["channel"], to_us(ts), ev["outcome"]))
            contact_id = ev.get("contact_id", "")
            contact = self.open_contacts.get(contact_id)
            held = self.held_ends.get(contact_id, ())
            if any(h[2]["type"] == "contact.ended" and h[0] <= ts for h in held):
                contact = None  # closed at or before the session's end, in ``ts`` order
            if ev["outcome"] == "escalated" and contact is not None:
                self.escalations[contact.channel] = self.escalations.get(contact.channel, 0) + 1
            return None
        if kind == "sentiment.scored":
            self.sentiments.append((self._owner(ev), to_us(ts), float(ev["score"])))
            return None
        owner = self._owner(ev)
        reason = super()._apply(ev, ts)
        if reason is not None:
            return reason
        if kind == "ticket.created":
            queue = ev.get("queue", "default")
            priority = ev.get("priority") or "normal"
            self.helpdesk[ev["ticket_id"]] = HelpdeskTicket(ev["channel"], queue, ts, priority)
        elif kind in ("ticket.responded", "ticket.solved", "ticket.reopened"):
            self.helpdesk[ev["ticket_id"]].log.append((to_us(ts), kind.split(".")[1], ""))
        elif kind == "ticket.rated":
            self.surveys.append((owner, to_us(ts), "csat", ev["rating"]))
        return None

    def _owner(self, ev: dict[str, Any]) -> str:
        """The channel a rating, survey or sentiment counts on: its known ticket's, its open
        contact's, else its own."""
        ticket = self.tickets.get(ev.get("ticket_id", ""))
        if ticket is not None:
            return ticket.channel
        contact = self.open_contacts.get(ev.get("contact_id", ""))
        if contact is not None:
            return contact.channel
        return str(ev["channel"])

    # ------------------------------------------------------------ Wave 2 results at ``now``

    def wave2_numbers(self, now: float) -> tuple[dict[Row, float], dict[tuple[str, str], Agg2]]:
        """The counters and gauges of the Wave 2 families at ``now`` (nonzero ones), and per
        (channel, window) the windowed counts."""
        out: dict[Row, float] = {}
        floors = window_floors(now, self.cfg)
        windows: dict[tuple[str, str], Agg2] = {
            (ch, w): Agg2() for ch in self.cfg["channels"] for w in floors
        }
        now_us = to_us(now)

        def bump(row: Row, by: float = 1) -> None:
            out[row] = out.get(row, 0) + by

        def windowed(channel: str, t_us: int, name: str, by: int = 1) -> None:
            if t_us > now_us:
                return
            for w, floor in floors.items():
                if (t_us >= floor * US) if w == "today" else (bucket_key(t_us) > floor):
                    agg = windows[channel, w]
                    setattr(agg, name, getattr(agg, name) + by)

        for t in self.helpdesk.values():
            self._ticket_numbers(t, now, now_us, out, windowed)
        for ch, t_us, survey, score in self.surveys:
            bump(
                _row("support_survey_responses_total", channel=ch, survey=survey, score=str(score))
            )
            if survey == "nps":
                windowed(ch, t_us, "nps_responses")
                windowed(ch, t_us, "nps_promoters", score >= 9)
                windowed(ch, t_us, "nps_detractors", score <= 6)
            elif survey == "ces":
                windowed(ch, t_us, "ces_responses")
                windowed(ch, t_us, "ces_sum", score)
        for ch, ts, rating in self.ratings:
            bump(_row("support_csat_ratings_total", channel=ch, rating=str(rating)))
            windowed(ch, to_us(ts), "ratings")
            windowed(ch, to_us(ts), "satisfied", rating >= 4)
        for ch, t_us, outcome in self.bots:
            bump(_row("support_bot_sessions_total", channel=ch, outcome=outcome))
            windowed(ch, t_us, "bot_sessions")
            windowed(ch, t_us, "bot_contained", outcome == "contained")
            windowed(ch, t_us, "bot_escalated", outcome == "escalated")
        for ch, count in self.escalations.items():
            bump(_row("support_bot_escalated_contacts_total", channel=ch), count)
        cuts = self.cfg.get("sentiment", {})
        negative_below = cuts.get("negative_below", -0.3)
        positive_above = cuts.get("positive_above", 0.3)
        for ch, t_us, value in self.sentiments:
            pole = (
                "negative"
                if value < negative_below
                else "positive"
                if value > positive_above
                else "neutral"
            )
            bump(_row("support_sentiment_total", channel=ch, polarity=pole))
            windowed(ch, t_us, "sentiments")
            windowed(ch, t_us, "sentiment_negative", pole == "negative")
            windowed(ch, t_us, "sentiment_positive", pole == "positive")
        return {k: v for k, v in out.items() if v != 0}, windows

    def _ticket_numbers(
        self,
        t: HelpdeskTicket,
        now: float,
        now_us: int,
        out: dict[Row, float],
        windowed: Any,
    ) -> None:
        def bump(row: Row, by: float = 1) -> None:
            out[row] = out.get(row, 0) + by

        cs = self.cfg["channels"][t.channel]
        cal_name = cs.get("queue_calendars", {}).get(t.queue, cs.get("calendar"))
        cal = None if cal_name is None else self.cfg["calendars"][cal_name]
        q = {"channel": t.channel, "queue": t.queue}
        open_now = not t.solved_now()
        bump(_row("support_tickets_created_total", **q))
        windowed(t.channel, to_us(t.created), "created")
        responses, reopened = 0, False
        for ts, kind, _ in t.log:
            if kind == "responded":
                responses += 1
            elif kind == "reopened":
                reopened = True
                bump(_row("support_tickets_reopened_total", **q))
                windowed(t.channel, ts, "reopened")
            elif kind == "solved":
                first_contact = responses <= 1 and not reopened
                bump(_row("support_tickets_solved_total", **q))
                bump(_row("support_tickets_solved_first_contact_total", **q), first_contact)
                windowed(t.channel, ts, "solved")
                windowed(t.channel, ts, "solved_first_contact", first_contact)
        cycles, status = ticket_cycles(t, now_us, cs, cal)
        resolution_breached = False
        for cycle in cycles:
            name = CLOCK_NAMES[cycle.clock]
            if cycle.breached(now_us) and not (cycle.clock == 2 and resolution_breached):
                resolution_breached |= cycle.clock == 2
                bump(_row("support_sla_breaches_total", **q, sla=name))
                assert cycle.deadline is not None
                windowed(t.channel, cycle.deadline, f"breaches_{name}")
        if not open_now:
            return
        priority = t.current_priority()
        bump(_row("support_tickets_open", **q))
        bump(_row("support_tickets_open_by_priority", channel=t.channel, priority=priority))
        targets = clock_targets(cs, priority)
        running = [c for c in cycles if c.stop is None]
        active = [c for c in running if targets[c.clock] is not None]
        paused = [status in pause_statuses(cs, c.clock) for c in active]
        # paused: a clock is paused, and none with a target runs (one without may)
        any_paused = any(status in pause_statuses(cs, c.clock) for c in running)
        bump(_row("support_tickets_paused", **q), any_paused and all(paused))
        for cycle, is_paused in zip(active, paused, strict=True):
            target = targets[cycle.clock]
            assert target is not None
            lead = warning_lead(cs, cycle.clock, target)
            if not is_paused and not cycle.breached(now_us) and cycle.run >= target - lead:
                bump(_row("support_tickets_at_risk", **q, sla=CLOCK_NAMES[cycle.clock]))
        age = _row("support_ticket_oldest_open_age_seconds", **q)
        out[age] = max(out.get(age, 0.0), round(now - t.created, 6))


@dataclass
class Agg2:
    """The windowed counts of one channel and window (the fields the Wave 2 test compares)."""

    created: int = 0
    solved: int = 0
    solved_first_contact: int = 0
    reopened: int = 0
    breaches_first_response: int = 0
    breaches_next_reply: int = 0
    breaches_resolution: int = 0
    ratings: int = 0
    satisfied: int = 0
    nps_responses: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    ces_responses: int = 0
    ces_sum: int = 0
    bot_sessions: int = 0
    bot_contained: int = 0
    bot_escalated: int = 0
    sentiments: int = 0
    sentiment_negative: int = 0
    sentiment_positive: int = 0


def _invalid(ev: dict[str, Any]) -> str | None:  # noqa: PLR0911
    """The decode-time reject of a Wave 2 field (``invalid_value`` / ``wrong_type``), if any."""
    kind = ev["type"]
    if kind in ("ticket.created", "ticket.priority_changed") and "priority" in ev:
        return None if ev["priority"] in PRIORITY_NAMES else "invalid_value"
    if kind == "ticket.status_changed":
        return None if ev["status"] in STATUSES else "invalid_value"
    if kind == "survey.answered":
        score = ev["score"]
        if isinstance(score, bool) or not isinstance(score, int):
            return "wrong_type"
        if ev["survey"] not in SURVEY_SCORES:
            return "invalid_value"
        low, high = SURVEY_SCORES[ev["survey"]]
        return None if low <= score <= high else "invalid_value"
    if kind == "bot.session_ended":
        return None if ev["outcome"] in BOT_OUTCOME_NAMES else "invalid_value"
    if kind == "sentiment.scored":
        score = ev["score"]
        if isinstance(score, bool) or not isinstance(score, int | float):
            return "wrong_type"
        return None if -1 <= score <= 1 else "invalid_value"
    return None
