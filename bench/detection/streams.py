"""The count streams an optimal detector would watch, read back from an events file.

Read from the same bytes the monitor replays, per channel: arrival times, complaint times,
first-response times, service-level trials and CSAT trials. A trial is ``(time the outcome
is known, 1 if bad else 0)``: for service level, a contact answered within T is good at its
answer; one not answered within T is bad at ``queued + T`` (when it breaches); an abandon
within ``short_abandon`` seconds is not a trial (the metric leaves it out of the offered).
For CSAT a rating of 1-3 is bad.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import msgspec


@dataclass(slots=True)
class Streams:
    arrivals: list[float] = field(default_factory=list)
    complaints: list[float] = field(default_factory=list)
    responses: list[float] = field(default_factory=list)
    sl: list[tuple[float, int]] = field(default_factory=list)
    csat: list[tuple[float, int]] = field(default_factory=list)
    long_abandons: list[float] = field(default_factory=list)
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0


class _Event(msgspec.Struct):
    type: str
    ts: str
    channel: str
    contact_id: str | None = None
    ticket_id: str | None = None
    rating: int | None = None


def read(path: Path, answer: Mapping[str, float], short_abandon: float = 5.0) -> dict[str, Streams]:
    """Per channel streams; ``answer`` maps each live channel to its T in seconds."""
    decoder = msgspec.json.Decoder(_Event)
    out: dict[str, Streams] = {}
    queued: dict[str, float] = {}
    responded: set[str] = set()
    with path.open("rb") as f:
        for line in f:
            event = decoder.decode(line)
            t = datetime.fromisoformat(event.ts).timestamp()
            s = out.setdefault(event.channel, Streams())
            kind = event.type
            if kind == "contact.queued" and event.contact_id is not None:
                queued[event.contact_id] = t
                s.arrivals.append(t)
            elif kind in ("contact.answered", "contact.abandoned") and event.contact_id:
                start = queued.pop(event.contact_id)
                limit = answer[event.channel]
                wait = t - start
                if kind == "contact.answered":
                    s.answered += 1
                    s.sl.append((t, 0) if wait <= limit else (start + limit, 1))
                elif wait < short_abandon:
                    s.abandoned += 1
                    s.short_abandoned += 1
                else:
                    s.abandoned += 1
                    s.long_abandons.append(t)
                    s.sl.append((min(t, start + limit), 1))
            elif kind == "complaint.received":
                s.complaints.append(t)
            elif kind == "ticket.responded" and event.ticket_id not in responded:
                responded.add(event.ticket_id or "")
                s.responses.append(t)
            elif kind == "ticket.rated" and event.rating is not None:
                s.csat.append((t, 1 if event.rating <= 3 else 0))
    for s in out.values():
        s.sl.sort()
    return out


def service_level(s: Streams, start: float, end: float) -> tuple[float, float, int]:
    """(service level, abandon ratio, offered) of the trials decided in ``[start, end)``,
    as the metric defines them (short abandons left out)."""
    trials = [bad for t, bad in s.sl if start <= t < end]
    offered = len(trials)
    if not offered:
        return float("nan"), float("nan"), 0
    abandons = sum(1 for t in s.long_abandons if start <= t < end)
    return 1 - sum(trials) / offered, abandons / offered, offered
