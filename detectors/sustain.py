"""A condition judged at every tick, made persistent before a detector calls it active.

Active once the condition has held at every tick for ``hold`` seconds; then active until it has
not held at any tick for ``release`` seconds. These are the edges of an alert rule's ``for`` and
``keep_firing_for`` (``alerts/state.py``): a detector with a ``Sustain`` and a rule with neither
fire and resolve at the same ticks as the bare condition under a rule with both, without a
pending alert for every short stretch in which the condition holds.
"""

from __future__ import annotations

import math


class Sustain:
    __slots__ = ("active", "cleared_at", "hold", "release", "run_start", "since")

    def __init__(self, hold: float, release: float) -> None:
        self.hold = hold
        self.release = release
        self.run_start: float | None = None
        """First tick of the current run of ticks at which the condition held."""
        self.cleared_at: float | None = None
        """While active: first tick of the current run at which it did not hold."""
        self.active = False
        self.since = math.nan
        """While active: the first tick of the run that made it active."""

    def step(self, now: float, condition: bool) -> bool:
        """The persistent state at ``now`` given whether the condition holds at this tick."""
        if condition:
            self.cleared_at = None
            if self.run_start is None:
                self.run_start = now
            if not self.active and now - self.run_start >= self.hold:
                self.active = True
                self.since = self.run_start
        else:
            self.run_start = None
            if self.active:
                if self.cleared_at is None:
                    self.cleared_at = now
                if now - self.cleared_at >= self.release:
                    self.active = False
                    self.cleared_at = None
                    self.since = math.nan
        return self.active

    def dump(self) -> list[float | None]:
        return [self.run_start, self.cleared_at, self.since if self.active else None]

    def load(self, data: list[float | None]) -> None:
        run_start, cleared_at, since = data
        self.run_start = None if run_start is None else float(run_start)
        self.cleared_at = None if cleared_at is None else float(cleared_at)
        self.active = since is not None
        self.since = math.nan if since is None else float(since)
