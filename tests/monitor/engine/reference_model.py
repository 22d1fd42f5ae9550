"""A deliberately simple model of the metric definitions: plain lists, everything recomputed
from event times at the end. It shares no code with the engine (only the config numbers).

Early outcomes: the clock is the largest ``ts`` fed so far. An outcome whose contact or ticket is
not open, stamped no more than the allowed lateness before the clock, waits in a list; it is
applied (in ``ts`` order) right after its item's opening event, or counted as ``unknown_*`` once
the clock is more than the lateness past its ``ts`` (or at :meth:`Reference.finish`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_RANK = {"answered": 0, "abandoned": 0, "ended": 1, "responded": 0, "solved": 1, "reopened": 2}
"""Outcomes of one item waiting with the same ``ts`` are applied in lifecycle order."""


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
    arrivals: int = 0

    def feed(self, ev: dict[str, Any], ts: float) -> None:
        self.clock = max(self.clock, ts)
        lateness = self.cfg["ingest"]["allowed_lateness"]
        for item in list(self.waiting_outcomes):
            if item[0] < self.clock - lateness:
                self._give_up(item)
        if ev["event_id"] in self.seen:
            return
        reason = self._apply(ev, ts)
        if reason in ("unknown_contact", "unknown_ticket") and ts >= self.clock - lateness:
            self.arrivals += 1
            self.waiting_outcomes.append((ts, self.arrivals, ev))
            self.seen.add(ev["event_id"])
            return
        if reason is None:
            self.seen.add(ev["event_id"])
            if ev["type"] in ("contact.queued", "ticket.created"):
                self._opened(ev)
        else:
            self._count(reason)

    def finish(self) -> None:
        """End of the stream: every outcome still waiting for its item is unknown."""
        for item in list(self.waiting_outcomes):
            self._give_up(item)

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
            key=lambda w: (w[0], _RANK[w[2]["type"].split(".")[1]], w[1]),
        )
        for item in mine:
            self.waiting_outcomes.remove(item)
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
                out[f"{base}/oldest"] = max(out.get(f"{base}/oldest", 0), now - c.queued)
                if now - c.queued > t:
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
            stop = min([*t.responses[:1], *t.solves[:1], math.inf])
            deadline = t.created + fr
            bump(f"{base}/fr_breach", min(stop, now) > deadline)
            bump(f"{base}/fr_risk", stop > now and deadline - fr_lead <= now <= deadline)
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
