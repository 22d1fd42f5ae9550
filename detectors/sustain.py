"""A condition judged at every tick, made persistent before a detector calls it active.

Active once the condition has held at every tick for ``hold`` seconds (the edge of an alert
rule's ``for``), or, with a ``hold_share`` below 1, at a tick at which it holds and has held for
at least that share of the last ``hold`` seconds (a condition that flickers, such as the oldest
wait of a queue whose customers keep being answered late, still counts). Then active until,
over the last ``release`` seconds, the condition held for less than ``share`` of the time
(default ``RELEASE_SHARE``, a quarter: with a 20-minute release, 15 minutes after a clean
stop). A rule's ``keep_firing_for`` would instead wait for ``release`` seconds in which it
never held: a condition that holds for a few seconds every few minutes on healthy traffic (a
waiting customer nearing T) would then keep an alert firing all day after a 30-minute incident.

A tick at which the condition holds counts the time since the previous tick as held. Those
times are kept as runs, within the last ``release`` seconds (or ``hold``, when it is longer and
judged by a share): at most one run per two ticks of that span, each a list of two floats
(about 120 bytes): 600 runs, about 72 KB, at one tick a second and a 20-minute span for a
condition that flips at every tick; a few runs otherwise.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from support_monitor.monitor.durations import lasted

RELEASE_SHARE = 0.25
"""Released when the condition held for less than this share of the last ``release`` seconds.
A quarter: on the exponential stream (``bench/detection/exponential.py``) the backlog condition
held 9-17% of each half hour of healthy peak traffic and 49% of a service-level collapse."""


class Sustain:
    __slots__ = (
        "active",
        "held",
        "hold",
        "hold_share",
        "keep",
        "last",
        "release",
        "run_start",
        "share",
        "since",
    )

    def __init__(
        self, hold: float, release: float, share: float = RELEASE_SHARE, hold_share: float = 1.0
    ) -> None:
        self.hold = hold
        self.release = release
        self.share = share
        self.hold_share = hold_share
        self.keep = max(release, hold) if hold_share < 1 else release
        """How far back held runs are kept: the ``release`` span, and the ``hold`` span when
        activation is judged by a share of it."""
        self.run_start: float | None = None
        """First tick of the current run of ticks at which the condition held."""
        self.last: float | None = None
        """The previous tick."""
        self.held: deque[list[float]] = deque()
        """[start, end] of each run in which the condition held, oldest first: a tick at
        which it holds counts the time since the previous tick."""
        self.active = False
        self.since = math.nan
        """While active: the first tick of the run that made it active."""

    def step(self, now: float, condition: bool) -> bool:
        """The persistent state at ``now`` given whether the condition holds at this tick."""
        if not condition and not self.active and not self.held:  # the usual tick: nothing on
            self.last = now
            self.run_start = None
            return False
        last, self.last = self.last, now
        if condition:
            if self.run_start is None:
                self.run_start = now
            if last is not None and now > last:
                held = self.held
                if held and held[-1][1] == last:
                    held[-1][1] = now
                else:
                    held.append([last, now])
            if not self.active:
                self._activate(now, self.run_start)
        else:
            self.run_start = None
        if self.active and not condition and self.held_share(now, self.release) < self.share:
            self.active = False
            self.since = math.nan
        self._trim(now)
        return self.active

    def _activate(self, now: float, run_start: float) -> None:
        """At a tick at which the condition holds: active once held long enough."""
        if self.hold_share >= 1:
            if lasted(now, run_start, self.hold):
                self.active = True
                self.since = run_start
        elif self.held_share(now, self.hold) >= self.hold_share:
            self.active = True
            self.since = self._first_held(now - self.hold)

    def held_share(self, now: float, span: float) -> float:
        """The share of the last ``span`` seconds (at most the kept span) in which the
        condition held; 0 with a ``span`` of 0 (a ``release`` of 0 lets go at once)."""
        if span <= 0:
            return 0.0
        edge = now - span
        total = sum(end - max(start, edge) for start, end in self.held if end > edge)
        return total / span

    def _first_held(self, edge: float) -> float:
        """The start of the first held time after ``edge`` (when the condition began)."""
        for start, end in self.held:
            if end > edge:
                return max(start, edge)
        return self.last if self.last is not None else math.nan

    def _trim(self, now: float) -> None:
        edge = now - self.keep
        held = self.held
        while held and held[0][1] <= edge:
            held.popleft()

    def dump(self) -> list[Any]:
        return [self.run_start, self.last, self.since if self.active else None, list(self.held)]

    def load(self, data: list[Any]) -> None:
        run_start, last, since, held = data
        self.run_start = None if run_start is None else float(run_start)
        self.last = None if last is None else float(last)
        self.active = since is not None
        self.since = math.nan if since is None else float(since)
        self.held = deque([float(a), float(b)] for a, b in held)
