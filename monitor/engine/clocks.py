"""A ticket's SLA clocks (first response, next reply, resolution) in business time.

A clock holds the business time it has run (``elapsed``, up to ``since``), and, while it runs,
the instant its current segment started (``since``; NaN while paused or stopped). Its deadline is
the instant at which the business time elapsed reaches the target: ``calendar.add(since,
target - elapsed)``. Pausing adds ``calendar.elapsed(since, t)`` to ``elapsed``; resuming starts
a new segment. A target change keeps ``elapsed`` and recomputes the deadline from the change
time. The engine keeps one timer per running clock (deadline) and one for its at-risk instant
(the instant the remaining business time equals the warning lead); a timer whose clock moved on is
spent and does nothing when it fires (its time no longer equals the clock's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import msgspec

CLOCKS = ("first_response", "next_reply", "resolution")
"""The ``sla`` label of each ticket clock."""


class Calendar(Protocol):
    """Business time: what a clock needs of a calendar."""

    def elapsed(self, start: float, end: float) -> float:
        """Business seconds in ``[start, end)``."""
        ...

    def add(self, start: float, seconds: float) -> float:
        """The instant at which ``seconds`` (>= 0) of business time have elapsed since
        ``start``."""
        ...

    def back(self, start: float, seconds: float) -> float:
        """The latest instant ``x <= start`` with ``elapsed(x, start) >= seconds`` (>= 0)."""
        ...


class Always:
    """A 24/7 calendar: business time is wall time."""

    def elapsed(self, start: float, end: float) -> float:
        return max(0.0, end - start)

    def add(self, start: float, seconds: float) -> float:
        return start + seconds

    def back(self, start: float, seconds: float) -> float:
        return start - seconds


ALWAYS = Always()


class Clock(msgspec.Struct, gc=False):
    """One SLA clock of a ticket (see the module doc)."""

    target: float | None
    """Business seconds allowed (the ticket's priority's target); ``None``: no target."""
    elapsed: float = 0.0
    since: float = math.nan
    deadline: float = math.inf
    risk_at: float = math.inf
    stopped: bool = False
    breached: bool = False
    """Breached: this clock passed its deadline, or (``carried``) its ticket's earlier
    resolution clock did (a ticket breaches resolution at most once)."""
    risk: bool = False
    carried: bool = False
    """``breached`` came with a reopen from the ticket's earlier resolution clock: this clock
    has not passed a deadline of its own, so it is at risk before its deadline like a fresh one
    (and passing it counts no second breach). False once it passes its own deadline."""

    @property
    def running(self) -> bool:
        return not self.stopped and not math.isnan(self.since)  # NaN ``since``: paused

    @property
    def paused(self) -> bool:
        return not self.stopped and math.isnan(self.since)


def day_start(zone: str, at: str) -> Callable[[float], float]:
    """The latest local day start (``at`` = "HH:MM" in the IANA ``zone``) at or before an
    instant, as epoch seconds. A day start that falls in a skipped local hour (a DST gap) is
    read with the offset before the change (``fold=0``), i.e. it lands one hour later on the
    wall clock; in a repeated hour it is the first of the two instants."""
    tz = ZoneInfo(zone)
    hour, minute = (int(part) for part in at.split(":"))

    def latest(t: float) -> float:
        local = datetime.fromtimestamp(t, tz)
        for back in range(3):
            day = local.date() - timedelta(days=back)
            start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp()
            if start <= t:
                return float(math.floor(start))
        return float(math.floor(t))  # pragma: no cover - a day start is at most ~49 h back

    return latest


def instant(t: float) -> float:
    """``t`` on the microsecond grid event times are on. A sum such as 10:00:00.1 + 600.3 s is
    600.3000001907349 s after its start as a float epoch; on the grid it is the same float as
    the event time 10:10:00.4, so an outcome stamped exactly at a deadline compares equal to it
    (on time), and so does ``--until`` at that instant. Infinite instants stay as they are."""
    return round(t * 1_000_000) / 1_000_000 if math.isfinite(t) else t


def shift(calendar: Calendar, start: float, seconds: float) -> float:
    """``calendar.add(start, seconds)``, and for a negative ``seconds`` the latest instant
    ``x <= start`` with ``-seconds`` of business time in ``[x, start)`` (a target change that
    leaves a clock already past its new target); on the microsecond grid (:func:`instant`)."""
    if seconds >= 0:
        return instant(calendar.add(start, seconds))
    return instant(calendar.back(start, -seconds))
