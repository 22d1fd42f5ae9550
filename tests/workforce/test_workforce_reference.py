"""The workforce against a brute-force model: random streams of agent states and answered
contacts naming agents, delivered out of order within the allowed lateness, through the real
pipeline; every workforce row is recomputed from the applied events (docs/workforce.md).

The model takes the events in ``ts`` order (those of one ``ts`` in the order they arrive): an
agent's events delivered out of order within the lateness give the numbers of its events in
order. It keeps, per agent, the list of its state changes and the set of contacts that keep it busy
(``contact.answered`` makes an agent not already busy through an ``agent.state`` busy; the end
of the last of those contacts makes it available). Time per state is summed from the change
list over each window's seconds; the staffing rows come from the independent Erlang C of
``tests/workforce/helpers.py``. Times are whole milliseconds, so no rounding is involved. Each
contact's own events arrive in order (``queued``, then ``answered``, then ``ended`` or
``abandoned``); an agent's may not."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import T0
from tests.workforce.helpers import occupancy, required, rows, state_ms, wait
from tests.workforce.streams import (
    CFG,
    DAY_START_MS,
    LIVE,
    START,
    STATES,
    WINDOWS,
    Case,
    Sent,
    event_lines,
    last_ms,
    streams,
)

# ------------------------------------------------------------------ the model


@dataclass
class Agent:
    state: str
    since: int
    changes: list[tuple[int, str]]
    implied: bool = False
    talking: set[str] = field(default_factory=set)
    handled: int = 0


@dataclass
class Contact:
    channel: str
    queue: str
    queued: int
    answered: int | None = None
    agent: str | None = None


@dataclass
class Model:
    agents: dict[tuple[str, str], Agent] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    queued: list[tuple[str, str, int]] = field(default_factory=list)  # channel, queue, ms
    ended: list[tuple[str, int, int]] = field(default_factory=list)  # channel, ended, talk ms

    def change(self, key: tuple[str, str], state: str, ms: int) -> None:
        agent = self.agents.get(key)
        if agent is None:
            self.agents[key] = Agent(state, ms, [(ms, state)])
            return
        agent.state, agent.since = state, ms
        agent.changes.append((ms, state))

    def apply(self, fields: dict[str, Any], ms: int) -> None:
        kind = fields["type"]
        if kind == "agent.state":
            key = (fields["channel"], fields["agent_id"])
            self.change(key, fields["state"], ms)
            agent = self.agents[key]
            agent.implied, agent.talking = False, set()
        elif kind == "contact.queued":
            contact = Contact(fields["channel"], fields["queue"], ms)
            self.contacts[fields["contact_id"]] = contact
            self.queued.append((contact.channel, contact.queue, ms))
        elif kind == "contact.answered":
            self.answered(fields, ms)
        elif kind == "contact.ended":
            self.end(fields["contact_id"], ms)
        else:
            del self.contacts[fields["contact_id"]]

    def answered(self, fields: dict[str, Any], ms: int) -> None:
        contact_id = fields["contact_id"]
        contact = self.contacts[contact_id]
        contact.answered = ms
        if "agent_id" not in fields:
            return
        contact.agent = fields["agent_id"]
        key = (contact.channel, contact.agent)
        agent = self.agents.get(key)
        if agent is None:
            self.change(key, "busy", ms)
            agent = self.agents[key]
        elif agent.state == "busy":
            if agent.implied:
                agent.talking.add(contact_id)
            return  # busy through an agent.state: its source sends the states
        else:
            self.change(key, "busy", ms)
        agent.implied = True
        agent.talking = {contact_id}

    def end(self, contact_id: str, ms: int) -> None:
        contact = self.contacts.pop(contact_id)
        assert contact.answered is not None
        self.ended.append((contact.channel, ms, ms - contact.answered))
        if contact.agent is None:
            return
        agent = self.agents[contact.channel, contact.agent]
        agent.handled += 1
        if not agent.implied or contact_id not in agent.talking:
            return
        agent.talking.discard(contact_id)
        if agent.talking:
            return
        agent.implied = False
        self.change((contact.channel, contact.agent), "available", ms)

    # -------------------------------------------------------------- the rows

    def agent_ms(
        self, channel: str, now_ms: int, *, exact: bool = False
    ) -> dict[str, dict[str, int]]:
        """Per window: agent-ms of each timed state of ``channel``'s agents at clock ``now_ms``
        (ms after T0; the clock started at T0), up to the clock itself (``exact``: see
        :func:`_lo`)."""
        changes = {a: ag.changes for (c, a), ag in self.agents.items() if c == channel}
        return {
            w: state_ms(changes, max(0, _lo(w, now_ms, exact=exact)), now_ms, now_ms)
            for w in WINDOWS
        }

    def expected(
        self, now_ms: int, *, exact: bool = False
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every workforce row at clock ``now_ms`` (``exact``: see :func:`_lo`)."""
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        seen = {channel for channel, _ in self.agents}
        for channel in sorted(seen):
            mine = {a: ag for (c, a), ag in self.agents.items() if c == channel}
            for state in STATES:
                count = sum(ag.state == state for ag in mine.values())
                out["support_agents", (("channel", channel), ("state", state))] = count
            ms = self.agent_ms(channel, now_ms, exact=exact)
            for w in WINDOWS:
                out["support_occupancy_ratio", (("channel", channel), ("window", w))] = occupancy(
                    ms[w]
                )
            staffed = sum(ag.state in ("available", "busy") for ag in mine.values())
            for queue in LIVE.get(channel, ()):  # staffing rows on live channels only
                required_n, wait_s = self.staffing(channel, queue, now_ms, ms, staffed, exact=exact)
                labels = (("channel", channel), ("queue", queue))
                out["support_agents_required", labels] = required_n
                out["support_estimated_wait_seconds", labels] = wait_s
        return out

    def staffing(
        self,
        channel: str,
        queue: str,
        now_ms: int,
        ms: dict[str, dict[str, int]],
        staffed: int,
        *,
        exact: bool,
    ) -> tuple[float, float]:
        shortest = min(WINDOWS, key=WINDOWS.__getitem__)
        arrivals = sum(
            c == channel and q == queue and _lo(shortest, now_ms, exact=exact) < t <= now_ms
            for c, q, t in self.queued
        )
        if arrivals == 0:
            return 0.0, 0.0
        rate = arrivals / WINDOWS[shortest]
        handle = math.nan
        for w in sorted(WINDOWS, key=WINDOWS.__getitem__):
            lo = _lo(w, now_ms, exact=exact)
            ended = [talk for c, t, talk in self.ended if c == channel and lo < t <= now_ms]
            if ended:
                handle = (sum(ended) + ms[w]["after_call_work"]) / len(ended) / 1000
                break
        if math.isnan(handle) and staffed == 0:  # arrivals and no capacity at all: no wait ends
            return math.nan, math.inf
        if not handle > 0:  # unknown, or every contact ended at its answer: no model
            return math.nan, math.nan
        traffic = rate * handle
        answer = float(CFG["channels"][channel]["answer_seconds"])
        level = float(CFG["channels"][channel]["service_level_target"])
        return float(required(traffic, handle, answer, level)), wait(staffed, traffic, handle)


def _lo(window: str, now_ms: int, *, exact: bool = False) -> int:
    """A window holds (lo, now]: the sliding ones from the clock's whole second back (``exact``,
    a replay's last instant: from the clock itself), ``today`` from the latest day start at or
    before the clock (ms after T0)."""
    if window == "today":
        return DAY_START_MS if now_ms >= DAY_START_MS else DAY_START_MS - 86_400_000
    end = now_ms if exact else now_ms // 1000 * 1000
    return end - WINDOWS[window] * 1000


def _same(got: float, want: float) -> bool:
    if math.isnan(want) or math.isinf(want):
        return math.isnan(got) if math.isnan(want) else got == want
    return got == pytest.approx(want, rel=1e-9, abs=1e-12)


def feed(case: Case, *, exact_end: bool = False) -> tuple[Engine, Model]:
    """The stream through the real pipeline (event time as clock), and the model of it; no
    event may be rejected."""
    engine = Engine(parse_settings(CFG), exact_end=exact_end)
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    model = Model()
    for i, line in enumerate(event_lines(case)):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    for sent in sorted([START, *case.events], key=lambda sent: sent.ms):  # stable: arrival order
        model.apply(sent.fields, sent.ms)
    assert sum(stats.rejected.values()) == 0, stats.rejected
    return engine, model


def check(case: Case) -> None:
    engine, model = feed(case)
    last = last_ms(case)
    for later in (None, *case.later):
        now_ms = last if later is None else last + round(later * 1000)
        engine.flush(None if later is None else T0 + now_ms / 1000)
        got = rows(engine)
        want = model.expected(now_ms)
        assert got.keys() == want.keys()
        wrong = {k: (got[k], v) for k, v in want.items() if not _same(got[k], v)}
        assert not wrong, (now_ms, wrong)
        for (channel, agent_id), agent in model.agents.items():
            assert engine.workforce.agents[channel, agent_id].handled == agent.handled
        for channel in CFG["channels"]:
            want_ms = model.agent_ms(channel, now_ms)
            # the buckets hold the whole seconds; the part-second up to the clock is read apart
            available, busy, acw = engine.workforce.unaccrued_ms(channel, engine.now)
            for w in WINDOWS:
                total = engine.channels[channel].windows.total(w)
                got_ms = {
                    "available": total.agent_available_ms + available,
                    "busy": total.agent_busy_ms + busy,
                    "after_call_work": total.agent_acw_ms + acw,
                }
                assert got_ms == want_ms[w], (now_ms, channel, w)


def check_exact_end(case: Case) -> None:
    """As :func:`check`, through an engine that cuts its windows at its last instant, as a
    replay does: every sliding window holds exactly ``(now - W, now]`` there."""
    engine, model = feed(case, exact_end=True)
    now_ms = last_ms(case)
    engine.flush()
    engine.end_at(T0 + now_ms / 1000)
    got = rows(engine)
    want = model.expected(now_ms, exact=True)
    wrong = {k: (got[k], v) for k, v in want.items() if not _same(got[k], v)}
    assert not wrong, (now_ms, wrong)


def _sent(ms: int, arrival: int, fields: dict[str, Any]) -> Sent:
    return Sent(ms, arrival, arrival, fields)


def _answer(contact: str, agent: str) -> dict[str, Any]:
    return {"type": "contact.answered", "channel": "chat", "contact_id": contact, "agent_id": agent}


def _queue(contact: str) -> dict[str, Any]:
    return {"type": "contact.queued", "channel": "chat", "queue": "sales", "contact_id": contact}


def _end(contact: str) -> dict[str, Any]:
    return {"type": "contact.ended", "channel": "chat", "contact_id": contact}


# An agent's first chat (answered at 2 s) arrives after its second (answered at 3 s): it is put
# before it, and its end at 4 s must not make the agent available while the second chat goes on
# until 9 s.
LATE_ANSWER_THEN_ITS_END = Case(
    [
        _sent(1000, 1000, _queue("x1")),
        _sent(1000, 1001, _queue("x2")),
        _sent(3000, 3000, _answer("x2", "a1")),
        _sent(2000, 3001, _answer("x1", "a1")),
        _sent(4000, 4000, _end("x1")),
        _sent(9000, 9000, _end("x2")),
    ],
    [0.0, 61.0],
)


def _state(agent: str, state: str) -> dict[str, Any]:
    return {"type": "agent.state", "channel": "voice", "agent_id": agent, "state": state}


# The clock jumps from 400 s to 800 s, more than the longest sliding window (5m): the seconds
# 401-500 are in no sliding window at 800 s, but in the today window (from 300 s); they were
# not counted in it.
A_JUMP_WITHIN_THE_DAY = Case(
    [_sent(0, 0, _state("a1", "busy")), _sent(400_000, 400_000, _state("a1", "available"))],
    [400.0],
)
# The same jump from 250 s over the day start (300 s): the today window restarts there and
# holds 301-800 s, of which 301-500 s only it.
A_JUMP_OVER_THE_DAY_START = Case(
    [_sent(0, 0, _state("a1", "busy")), _sent(250_000, 250_000, _state("a1", "available"))],
    [550.0],
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
@example(LATE_ANSWER_THEN_ITS_END)
@example(A_JUMP_WITHIN_THE_DAY)
@example(A_JUMP_OVER_THE_DAY_START)
def test_workforce_equals_reference(case: Case) -> None:
    check(case)


# An agent available from 0 goes busy at 300.2 s and into after-call work at 300.4 s, a change
# that arrives late (the clock is past 301 s); the stream ends at 600.3 s. The 5-minute window
# holds (300.3, 600.3]: busy 0.1 s and after-call work 299.9 s, not the part (300, 300.3] of
# the oldest second (available 0.2 s, busy 0.1 s) that a cut at the whole second keeps.
A_LATE_CHANGE_IN_THE_OLDEST_SECOND = Case(
    [
        _sent(0, 0, _state("a1", "available")),
        _sent(300_200, 300_200, _state("a1", "busy")),
        _sent(301_500, 301_500, _queue("x1")),
        _sent(300_400, 302_000, _state("a1", "after_call_work")),
        _sent(600_300, 600_300, _queue("x2")),
    ],
    [],
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
@example(A_LATE_CHANGE_IN_THE_OLDEST_SECOND)
def test_workforce_at_a_replay_end_equals_reference(case: Case) -> None:
    check_exact_end(case)
