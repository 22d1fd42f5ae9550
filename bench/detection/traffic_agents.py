"""Agent states for the detection benchmark's live channels, and the staffing incidents.

:class:`AgentGenerator` is ``traffic.Generator`` with a named agent behind every staffed slot,
so the queue itself is unchanged (the same slots, the same random draws in the same order):

- the roster follows the slots: when the hourly staffing target rises, new agents log in
  (``agent.state available``); when it falls, free agents log off at once and busy ones when
  they finish (``offline``), as the slots do;
- an answer names its agent (``contact.answered`` with ``agent_id``); the handle time drawn for
  the contact is split into talk (the first ``1 - ACW_SHARE``, ending with ``contact.ended``)
  and after-call work (the rest: ``agent.state after_call_work``); the slot is free at the end
  of the after-call work, as before, and the agent is then ``available`` again (or ``offline``
  when the roster shrank meanwhile);
- breaks: every ``BREAK_EVERY`` seconds one available agent goes on ``break`` and is replaced at
  the same instant by an agent back from a break of at least ``BREAK_LENGTH`` (or by a fresh
  login), so the number of agents working never changes because of a break. An agent on break
  for longer than ``2 x BREAK_LENGTH`` with nobody to relieve logs off.

Agent ids are ``<channel>-a<n>``; offline ids are reused first, so a channel has at most about
its peak roster plus the agents on break.

Staffing incidents (on the day after the other incidents, see ``incidents``):

- ``understaffing`` (45 min from 14:00): staffed slots x 0.5, half the agents log off (busy
  ones as they finish) while the load stays;
- ``sick_call`` (4 h from 07:00): staffed slots x 0.6 all morning (40% of the roster called in
  sick).

The agent events add no random draws, so the contacts, complaints and ratings of a seed are the
ones ``traffic.Generator`` gives, except where two events fall on the same millisecond (the
heap then orders them by insertion, and the agents schedule one more action per contact).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.detection.traffic import (
    DAY,
    HOUR,
    MONDAY,
    WEEK,
    DeskSpec,
    Generator,
    Incident,
    LiveSpec,
    seasonal,
)

ACW_SHARE = 0.2
"""Share of each contact's handle time spent in after-call work (after ``contact.ended``)."""
BREAK_EVERY = 600.0
BREAK_LENGTH = 900.0

DURATIONS = {"understaffing": 45 * 60.0, "sick_call": 4 * HOUR}
FACTORS = {"understaffing": 0.5, "sick_call": 0.6}
STARTS = {"sick_call": 7.0, "understaffing": 14.0}
"""Hour of the staffing-incident day at which each kind starts (on every live channel)."""
KINDS = tuple(DURATIONS)
STREAM = {
    "understaffing": "service level trials (binomial)",
    "sick_call": "service level trials (binomial)",
}


def incidents(channels: Sequence[str], after: float) -> list[Incident]:
    """The staffing incidents of the live ``channels`` on the first weekday at or after
    ``after`` (rounded up to a midnight)."""
    day = math.ceil((after - MONDAY) / DAY) * DAY + MONDAY
    while (day - MONDAY) % WEEK >= 5 * DAY:
        day += DAY
    out = []
    for kind in KINDS:
        for channel in channels:
            if channel in ("voice", "chat"):
                begin = day + STARTS[kind] * HOUR
                out.append(Incident(kind, channel, begin, begin + DURATIONS[kind], FACTORS[kind]))
    return out


@dataclass(slots=True)
class _Roster:
    """The named agents of one live channel."""

    channel: str
    queue: str
    available: deque[str] = field(default_factory=deque)
    """Free agents, the longest free first (they take the next contact)."""
    on_break: deque[tuple[str, float]] = field(default_factory=deque)
    off: deque[str] = field(default_factory=deque)
    """Offline agent ids, reused first."""
    serving: dict[str, str] = field(default_factory=dict)
    """Contact id -> the agent on it (talk and after-call work)."""
    made: int = 0

    def fresh(self) -> str:
        if self.off:
            return self.off.popleft()
        self.made += 1
        return f"{self.channel}-a{self.made}"


class AgentGenerator(Generator):
    """``traffic.Generator`` plus agent states (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        start: float,
        end: float,
        *,
        live: Sequence[LiveSpec] = (),
        desks: Sequence[DeskSpec] = (),
        incidents: Sequence[Incident] = (),
        profile: Callable[[float], float] = seasonal,
    ) -> None:
        self._rosters: dict[str, _Roster] = {}
        super().__init__(
            seed, start, end, live=live, desks=desks, incidents=incidents, profile=profile
        )
        for pool in self._pools:
            for inc in self._incidents:
                if inc.kind in KINDS and inc.channel == pool.spec.name:
                    self._at(inc.start, partial(self._restaff, pool))
                    self._at(inc.end, partial(self._restaff, pool))
            first = (math.floor(start / BREAK_EVERY) + 1) * BREAK_EVERY
            self._at(first, partial(self._break_tick, pool))

    def _roster(self, spec: LiveSpec) -> _Roster:
        roster = self._rosters.get(spec.name)
        if roster is None:
            roster = self._rosters[spec.name] = _Roster(spec.name, spec.queues[0])
        return roster

    def _agent(self, roster: _Roster, agent: str, state: str) -> None:
        self._emit("agent.state", roster.channel, roster.queue, agent_id=agent, state=state)

    def _slots(self, spec: LiveSpec, t: float) -> int:
        slots = super()._slots(spec, t)
        for kind in KINDS:
            factor = self._factor(kind, spec.name, t)
            if factor is not None:
                slots = max(1, round(slots * factor))
        return slots

    def _restaff(self, pool: Any) -> None:
        """New staffing target: agents log in at once for more slots; for fewer, free agents
        log off at once and busy ones when they finish."""
        roster = self._roster(pool.spec)
        pool.target = self._slots(pool.spec, self.now)
        staffed = pool.free + pool.busy
        if pool.target > staffed:
            for _ in range(pool.target - staffed):
                agent = roster.fresh()
                roster.available.append(agent)
                self._agent(roster, agent, "available")
            pool.free += pool.target - staffed
            self._route(pool)
        elif pool.target < staffed:
            leave = min(pool.free, staffed - pool.target)
            for _ in range(leave):
                agent = roster.available.pop()  # the most recently freed leave first
                roster.off.append(agent)
                self._agent(roster, agent, "offline")
            pool.free -= leave

    def _route(self, pool: Any) -> None:
        """A free agent takes the longest-waiting contact and answers it at once (FIFO)."""
        roster = self._roster(pool.spec)
        while pool.free and pool.line:
            contact = pool.line.popleft()
            if not contact.waiting:
                continue  # abandoned while in line
            contact.waiting = False
            pool.free -= 1
            pool.busy += 1
            spec = pool.spec
            agent = roster.available.popleft()
            roster.serving[contact.cid] = agent
            self._emit(
                "contact.answered", spec.name, contact.queue, contact_id=contact.cid, agent_id=agent
            )
            handle = self._rng.expovariate(1 / spec.handle_mean)
            talk = handle * (1 - ACW_SHARE)
            self._at(self.now + talk, partial(self._talk_end, roster, contact))
            self._at(self.now + handle, partial(self._end_contact, pool, contact))

    def _talk_end(self, roster: _Roster, contact: Any) -> None:
        self._emit("contact.ended", roster.channel, contact.queue, contact_id=contact.cid)
        self._agent(roster, roster.serving[contact.cid], "after_call_work")

    def _end_contact(self, pool: Any, contact: Any) -> None:
        """After-call work done: the slot is free (as in ``traffic``), the agent available or,
        when the roster shrank, offline."""
        spec, rng = pool.spec, self._rng
        roster = self._roster(spec)
        agent = roster.serving.pop(contact.cid)
        pool.busy -= 1
        if pool.busy + pool.free < pool.target:
            roster.available.append(agent)
            self._agent(roster, agent, "available")
            pool.free += 1
            self._route(pool)
        else:
            roster.off.append(agent)
            self._agent(roster, agent, "offline")
        if rng.random() < spec.survey_share:
            when = self.now + rng.uniform(20.0, 120.0)
            self._at(when, partial(self._rate, spec.name, contact.queue, spec.satisfied_share, ""))

    def _break_tick(self, pool: Any) -> None:
        """One available agent goes on break; one back from a break (or a fresh one) takes
        its place at once. Long breaks with nobody to relieve end offline."""
        roster = self._roster(pool.spec)
        now = self.now
        back = None
        if roster.on_break and now - roster.on_break[0][1] >= BREAK_LENGTH:
            back = roster.on_break[0][0]
        if roster.available:
            leaving = roster.available.popleft()
            if back is not None:
                roster.on_break.popleft()
            else:
                back = roster.fresh()
            roster.on_break.append((leaving, now))
            self._agent(roster, leaving, "break")
            roster.available.append(back)
            self._agent(roster, back, "available")
        while roster.on_break and now - roster.on_break[0][1] >= 2 * BREAK_LENGTH:
            agent, _ = roster.on_break.popleft()
            roster.off.append(agent)
            self._agent(roster, agent, "offline")
        self._at(now + BREAK_EVERY, partial(self._break_tick, pool))
