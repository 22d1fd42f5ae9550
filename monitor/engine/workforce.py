"""Workforce: agent states per channel, time per state over the windows, staffing (Erlang C).

Agents are keyed by (channel, agent id); an agent id is never a label. The rules (``agent.state``,
the states implied by ``contact.answered``/``contact.ended``, late and superseded events, the
bounds) are in ``docs/workforce.md``; this docstring says how the numbers are kept.

**Time per state** (``Agg.agent_available_ms``, ``agent_busy_ms``, ``agent_acw_ms``, integer
agent-milliseconds) is accrued per channel, not per agent. ``accrued`` is the whole second up to
which every bucket holds its agent time. Each channel keeps ``rate``: how many agents were in
each of the three timed states at ``accrued``, and a heap of state changes stamped at or after
``accrued`` (``t_ms``, old state, new state). :meth:`Workforce.accrue` walks the seconds from
``accrued`` to the new edge: a second gets ``rate x 1000`` ms per state, corrected by the changes
that fall inside it at their exact millisecond (a change at ``t`` inside ``(k-1, k]`` gives the
old state ``t - (k-1)`` and the new one ``k - t``). A change stamped before ``accrued`` (a late
event that is still the agent's newest) moves the time ``(ts, accrued]`` from the old state to
the new one in the buckets still held by a window, and in the today total for the part of it
after the day start that no bucket holds any more, and changes ``rate`` at once. So the buckets
equal what the events in ``ts`` order would have given, to the millisecond. Cost: O(channels)
per second plus O(log n) per state change; a jump of the clock writes at most the longest
window's seconds per channel. The agent time of the seconds a jump passes over before those
(none of the sliding windows holds them at its end, the today window may) goes into one bucket,
the last of them, which the sliding windows drop as they slide to the end of the jump.

**Late state events.** Each agent logs the state events it applied that are stamped at or after
the watermark (at most :data:`MAX_AGENT_LOG`), with its state before the first of them
(``Agent.base``). A late event stamped among them is put in its place (:meth:`Workforce.reorder`):
the changes that :func:`step` gives for the logged events from its ``ts`` on are taken back and
those with it are made, each through the same accounting as a change (above), so the numbers are
those of the events in ``ts`` order. Events the watermark passed leave the log.

**Arrivals** per (channel, queue) for the staffing model are counted in one-second buckets under
``ceil(ts)``, exactly as the window ``queued`` counts, over the shortest window only: the buckets
slide with the windows, so the total equals the shortest window's ``queued`` split by queue.

**A replay's end** between two whole seconds (``exact_end``, :meth:`Workforce.end_at`): the
windows' oldest second still holds ``(floor(now) - W, now - W]``. A replay keeps each channel's
changes of ``rate`` with their millisecond while the longest window may hold them, and the
``ts`` of each contact queued at a fractional instant while the shortest one holds it; at the
end, the agent time of that part (``rate`` taken back over the later changes, then run forward)
and the contacts queued in it are taken out.

**Staffing** is computed when read (:meth:`Workforce.staffing`), with a per-queue cache keyed on
every input, so a scrape re-runs the Erlang C search only for queues whose inputs changed.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from support_monitor.monitor.config import TODAY
from support_monitor.monitor.engine.erlang import Staffing, staffing
from support_monitor.monitor.events import AgentState, Reject

if TYPE_CHECKING:
    from support_monitor.monitor.config import Settings
    from support_monitor.monitor.engine.state import ChannelRuntime
    from support_monitor.monitor.engine.windows import Agg, SlidingWindows

AGENT_STATES = ("available", "busy", "after_call_work", "break", "offline")
"""State names by index; the first three are the timed states of occupancy."""
STATE_INDEX = {name: i for i, name in enumerate(AGENT_STATES)}
AVAILABLE, BUSY, ACW, BREAK, OFFLINE = range(5)
TIMED = 3
"""States with an index below this accrue time (``agent_available_ms`` .. ``agent_acw_ms``)."""

DEFAULT_SERVICE_LEVEL_TARGET = 0.8
"""The staffing target of a live channel without ``service_level_target``."""
DEFAULT_AGENT_ROWS = 1000
"""Rows :meth:`Workforce.agent_rows` returns when not told otherwise."""
EXPORT_VERSION = 1

AgentKey = tuple[str, str]
"""(channel, agent id)."""


class Agent:
    """One agent in one channel."""

    __slots__ = (
        "base",
        "entered",
        "floor",
        "handled",
        "implied",
        "latest",
        "log",
        "newest",
        "queues",
        "since",
        "state",
        "talking",
    )

    def __init__(self, state: int, ts: float, queues: tuple[str, ...] | None) -> None:
        self.state = state
        self.since = ts
        """``ts`` of the newest state change applied."""
        self.newest = ts
        """``ts`` of the newest state event applied: a change, or an answer that found the agent
        busy already (it says busy at its ``ts`` too). An ``agent.state`` or an answer stamped
        before it and not put in ``ts`` order is superseded."""
        self.entered = ts
        """When the current state began (a repeat of the same state keeps it)."""
        self.queues = queues
        """The channel queues served; ``None``: all of them."""
        self.implied = False
        """Busy because of ``contact.answered`` with no ``agent.state`` since."""
        self.talking = 0
        """Contacts answered since then and not yet ended (while ``implied``): those answered
        at or after ``since``, the start of the implied busy state. A contact answered before
        it (before the agent's last ``agent.state``, or an answer that was superseded) is not
        one of them, and its end does not make the agent available."""
        self.handled = 0
        """Contacts this agent answered that ended."""
        self.latest = ts
        """The largest ``ts`` of the state events applied (an end that changed nothing too)."""
        self.log: list[Entry] | None = None
        """The state events applied that a late one may still come before, in ``ts`` order
        (see :meth:`Workforce.reorder`); ``None``: none."""
        self.base: Facts | None = None
        """The agent before ``log[0]`` (``None``: not seen before it)."""
        self.floor = -math.inf
        """``ts`` of the newest event taken out of ``log`` into ``base``."""

    def facts(self) -> Facts:
        """The agent's state (not its log, not ``handled``)."""
        return (
            self.state,
            self.since,
            self.newest,
            self.entered,
            self.queues,
            self.implied,
            self.talking,
            self.latest,
        )

    @classmethod
    def of(cls, facts: Facts) -> Agent:
        """An agent in the state ``facts`` gives."""
        state, since, newest, entered, queues, implied, talking, latest = facts
        agent = cls(state, since, queues)
        agent.newest = newest
        agent.entered = entered
        agent.implied = implied
        agent.talking = talking
        agent.latest = latest
        return agent

    def take(self, other: Agent) -> None:
        """Take ``other``'s state (not its log, not ``handled``)."""
        self.state = other.state
        self.since = other.since
        self.newest = other.newest
        self.entered = other.entered
        self.queues = other.queues
        self.implied = other.implied
        self.talking = other.talking
        self.latest = other.latest


Facts = tuple[int, float, float, float, "tuple[str, ...] | None", bool, int, float]
"""An agent's state: state, since, newest, entered, queues, implied, talking, latest."""
Entry = tuple[float, int, int, "tuple[str, ...] | None", float]
"""One state event of an agent: ``ts``, kind (:data:`STATE`, :data:`ANSWERED`, :data:`ENDED`),
the state (``agent.state``), the queues (``agent.state``), the contact's answer time (an end)."""
STATE, ANSWERED, ENDED = range(3)
MAX_AGENT_LOG = 16
"""State events an agent keeps for late ones to come before (see :meth:`Workforce.reorder`)."""
Change = tuple[float, int, int]
"""A state change: ``ts``, old state, new state (a new agent: from ``OFFLINE``)."""


def _move(agent: Agent, state: int, ts: float) -> bool:
    """``agent`` is in ``state`` from ``ts``; whether that changed its state."""
    agent.since = agent.newest = ts
    if agent.state == state:
        return False
    agent.state = state
    agent.entered = ts
    return True


def step(agent: Agent | None, entry: Entry) -> tuple[Agent | None, Change | None]:
    """Apply one state event to ``agent`` (``None``: not seen yet), in place; the agent after
    it and the change it made. The rules are docs/workforce.md's; an event stamped before the
    agent's newest changes nothing here (the caller decides whether it is superseded)."""
    ts, kind, state, queues, _ = entry
    if agent is None:
        if kind == ENDED:  # the end of a contact of an agent not seen: nothing to change
            return None, None
        agent = Agent(state, ts, queues)
        if kind == ANSWERED:
            agent.implied = True
            agent.talking = 1
        return agent, (ts, OFFLINE, state)
    old = agent.state
    agent.latest = max(agent.latest, ts)
    new = _target(agent, entry)
    if new is None or not _move(agent, new, ts):
        return agent, None
    return agent, (ts, old, new)


def _target(agent: Agent, entry: Entry) -> int | None:
    """The state ``entry`` puts ``agent`` in (its other fields updated); ``None``: none."""
    ts, kind, state, queues, answered = entry
    if kind == ENDED:
        return _end(agent, ts, answered)
    if ts < agent.newest:
        return None
    if kind == STATE:
        agent.implied = False
        agent.talking = 0
        agent.queues = queues
        return state
    if agent.state == BUSY:
        agent.newest = ts  # busy at ts: an earlier state event arriving now is superseded
        if agent.implied:
            agent.talking += 1
        return None  # busy through agent.state: its source sends the states
    agent.implied = True
    agent.talking = 1
    return BUSY


def _end(agent: Agent, ts: float, answered: float) -> int | None:
    """The end at ``ts`` of a contact answered at ``answered``: available when it was the last
    contact keeping the agent busy (and not stamped before its newest state event)."""
    if not agent.implied or agent.talking <= 0 or answered < agent.since:
        return None
    agent.talking -= 1
    if agent.talking > 0:
        return None
    agent.implied = False
    return None if ts < agent.newest else AVAILABLE


def _revive(facts: Facts | None) -> Agent | None:
    return None if facts is None else Agent.of(facts)


def _changes(agent: Agent | None, entries: Iterable[Entry]) -> tuple[Agent | None, list[Change]]:
    """Step ``agent`` (in place) through ``entries``: the agent after them and their changes."""
    changes = []
    for entry in entries:
        agent, change = step(agent, entry)
        if change is not None:
            changes.append(change)
    return agent, changes


class _Arrivals:
    """Contacts queued on one queue, per second under ``ceil(ts)``, seconds after ``cut``."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.total = 0


class _ChannelAgents:
    """Per-channel workforce counts."""

    __slots__ = ("arrivals", "cache", "changed", "counts", "rate", "sched", "seen")

    def __init__(self) -> None:
        self.seen = False
        """An agent was ever seen here: the workforce rows are exported from then on."""
        self.counts = [0] * len(AGENT_STATES)
        """Agents per state now (their newest state)."""
        self.rate = [0] * TIMED
        """Agents per timed state at ``Workforce.accrued`` (before the scheduled changes)."""
        self.sched: list[tuple[int, int, int, int]] = []
        """Heap of (t_ms, seq, old, new): changes at or after ``accrued`` not yet accrued."""
        self.arrivals: dict[str, _Arrivals] = {}
        self.cache: dict[str, tuple[tuple[float, ...], Staffing]] = {}
        self.changed: deque[tuple[int, int, int]] = deque()
        """With ``exact_end``: (t_ms, old, new) of the changes ``rate`` took, in the order it took
        them (a late one stamped before others), kept while a sliding window may hold their
        second (:meth:`Workforce.end_at`)."""


def _add_ms(agg: Agg, state: int, ms: int) -> None:
    if state == AVAILABLE:
        agg.agent_available_ms += ms
    elif state == BUSY:
        agg.agent_busy_ms += ms
    elif state == ACW:
        agg.agent_acw_ms += ms


class Workforce:
    """Every agent of every channel, keyed by (channel, agent id)."""

    def __init__(
        self,
        settings: Settings,
        channels: dict[str, ChannelRuntime],
        capacity: dict[str, int] | None = None,
        *,
        exact_end: bool = False,
    ) -> None:
        """``exact_end``: also keep what :meth:`end_at` needs to cut the shortest window's
        arrivals and every window's agent time exactly at a fractional last instant."""
        self.channels = channels
        self.exact_end = exact_end
        self.capacity = capacity if capacity is not None else {}
        """The engine's ``capacity_exhausted``: refused agents count under ``agents``."""
        self.agents: dict[AgentKey, Agent] = {}
        self.by_channel = {name: _ChannelAgents() for name in channels}
        self._offline: dict[AgentKey, None] = {}  # offline agents, in the order they went offline
        self.accrued = -math.inf
        """Whole second up to which agent time is in the buckets (``-inf``: not started)."""
        self._arrival_cut = -math.inf  # arrival buckets with a key <= this are out
        self._arrival_due: dict[int, list[_Arrivals]] = {}
        """Bucket key -> the queues holding a bucket under it: a slide visits only those."""
        self._fine_arrivals: dict[int, list[tuple[_Arrivals, float]]] = {}
        """With ``exact_end``: bucket key -> (queue's arrivals, ts) of each contact queued at a
        fractional instant in it, for :meth:`end_at`."""
        self._seq = 0
        self.superseded = 0
        """State changes older than the agent's current state: counted as applied, not used."""
        # The sliding windows (the today window is not one: it is never the shortest).
        spans = {n: span for n, span in settings.window_seconds.items() if n != TODAY}
        self._max_width = max(math.ceil(span) for span in spans.values())
        self.shortest, self.shortest_span = min(spans.items(), key=lambda item: item[1])
        self._shortest_width = math.ceil(self.shortest_span)
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        """Take new limits and targets (the channels and windows cannot change on a reload)."""
        self.settings = settings
        self.max_agents = settings.limits.max_agents
        self.retention = settings.limits.agent_retention
        for cw in self.by_channel.values():
            cw.cache.clear()

    # ------------------------------------------------------------------ events

    def apply(self, ev: AgentState, ts: float, watermark: float = -math.inf) -> Reject | None:
        """An ``agent.state`` event (its channel is known to exist); ``watermark``: the
        engine's (see :meth:`event`)."""
        ch = self.channels[ev.channel]
        queues: tuple[str, ...] | None = None
        if ev.queues is not None:
            if not all(ch.settings.accepts_queue(name) for name in ev.queues):
                return Reject.UNKNOWN_QUEUE
            queues = tuple(sorted(set(ev.queues)))
        entry = (ts, STATE, STATE_INDEX[ev.state], queues, 0.0)
        if not self.event((ev.channel, ev.agent_id), entry, watermark):
            return Reject.CAPACITY
        return None

    def contact_queued(self, channel: ChannelRuntime, queue: str, ts: float) -> None:
        """A contact queued on ``queue`` of ``channel`` at ``ts`` (for the arrival rate)."""
        key = math.ceil(ts)
        if key <= self._arrival_cut:
            return
        arrivals = self.by_channel[channel.name].arrivals
        counts = arrivals.get(queue)
        if counts is None:
            counts = arrivals[queue] = _Arrivals()
        held = counts.buckets.get(key)
        if held is None:
            counts.buckets[key] = 1
            self._arrival_due.setdefault(key, []).append(counts)
        else:
            counts.buckets[key] = held + 1
        counts.total += 1
        if self.exact_end and key != ts:
            self._fine_arrivals.setdefault(key, []).append((counts, ts))

    def contact_answered(
        self, channel: ChannelRuntime, agent_id: str, ts: float, watermark: float = -math.inf
    ) -> None:
        """A contact of ``channel`` answered by ``agent_id`` at ``ts``: the agent is busy."""
        self.event((channel.name, agent_id), (ts, ANSWERED, BUSY, None, 0.0), watermark)

    def contact_ended(
        self,
        channel: ChannelRuntime,
        agent_id: str,
        ts: float,
        answered: float,
        watermark: float = -math.inf,
    ) -> None:
        """The contact that agent was on (answered at ``answered``) ended at ``ts``."""
        agent = self.agents.get((channel.name, agent_id))
        if agent is None:
            return
        agent.handled += 1
        self.event((channel.name, agent_id), (ts, ENDED, AVAILABLE, None, answered), watermark)

    # ------------------------------------------------------------------ state keeping

    def event(self, key: AgentKey, entry: Entry, watermark: float) -> bool:
        """One state event of an agent; ``False`` when the ``max_agents`` bound refuses a new
        agent. An event stamped before another of the agent already applied is put in ``ts``
        order when it can be (:meth:`reorder`), else applied as it stands: an ``agent.state``
        or an answer is then superseded (it changes nothing)."""
        agent = self.agents.get(key)
        ts = entry[0]
        if agent is None:
            if entry[1] == ENDED:
                return True
            agent = self._new(key, entry)
            if agent is not None and ts >= watermark:
                agent.log = [entry]
            return agent is not None
        if ts < agent.latest and self.reorder(key, agent, entry, watermark):
            return True
        if ts < agent.newest and entry[1] != ENDED:
            self.superseded += 1
            return True
        self._apply(key, agent, entry, watermark)
        return True

    def _apply(self, key: AgentKey, agent: Agent, entry: Entry, watermark: float) -> None:
        """Apply a state event of a known agent as it comes. It is logged when it is stamped at
        or after the watermark and after every event of the agent; else the log is dropped (no
        later event can be put in ``ts`` order before this one)."""
        ts = entry[0]
        if ts < agent.latest or ts < watermark:
            agent.log = agent.base = None
            implied = agent.implied
            _, change = step(agent, entry)
            if entry[1] == ENDED and ts < agent.newest and implied and not agent.implied:
                self.superseded += 1  # the end of the last contact, stamped before a newer state
            if change is not None:
                self._account(key, change)
            return
        log = agent.log
        if log is not None and log[0][0] < watermark:
            if log[-1][0] < watermark:  # all of it: the agent itself is what it leaves
                log = None
            else:
                self._fold(agent, watermark)
                log = agent.log
        if log is None:
            agent.base = agent.facts()
            agent.floor = agent.latest
            log = agent.log = []
        _, change = step(agent, entry)
        if change is not None:
            self._account(key, change)
        log.append(entry)
        if len(log) > MAX_AGENT_LOG:
            self._fold(agent, math.inf, MAX_AGENT_LOG)

    def reorder(self, key: AgentKey, agent: Agent, entry: Entry, watermark: float) -> bool:
        """Put a late state event in ``ts`` order among the agent's logged events, when it is
        stamped at or after the watermark and after every event the log no longer holds: the
        agent's changes from its ``ts`` on are taken back and made again in ``ts`` order (an
        event of the same ``ts`` goes after those already applied). ``False``: it cannot be."""
        ts = entry[0]
        if ts < watermark:
            return False
        self._fold(agent, watermark)
        log = agent.log
        if not log or ts < agent.floor:
            return False
        at = bisect.bisect_right(log, ts, key=_entry_ts)
        before, _ = _changes(_revive(agent.base), log[:at])
        _, old = _changes(None if before is None else Agent.of(before.facts()), log[at:])
        after, new = _changes(before, [entry, *log[at:]])
        assert after is not None  # the agent is known: some event of it made it
        channel = key[0]
        cw = self.by_channel[channel]
        for t, was, became in old:  # taken back
            self._time(channel, cw, became, was, t)
        for t, was, became in new:
            self._time(channel, cw, was, became, t)
        if after.state != agent.state:
            self._count(key, cw, agent.state, after.state)
        agent.take(after)
        log.insert(at, entry)
        if len(log) > MAX_AGENT_LOG:
            self._fold(agent, math.inf, MAX_AGENT_LOG)
        return True

    @staticmethod
    def _fold(agent: Agent, watermark: float, keep: int = MAX_AGENT_LOG) -> None:
        """Take the logged events stamped before ``watermark`` (and those beyond the last
        ``keep``) out of the log into ``base``: no late event can come before them any more."""
        log = agent.log
        if log is None:
            return
        n = 0
        while n < len(log) and (log[n][0] < watermark or len(log) - n > keep):
            n += 1
        if n == 0:
            return
        agent.floor = log[n - 1][0]
        if n == len(log):  # the agent itself is what they leave
            agent.log = agent.base = None
            return
        base = _revive(agent.base)
        for entry in log[:n]:
            base, _ = step(base, entry)
        del log[:n]
        agent.base = None if base is None else base.facts()

    def _new(self, key: AgentKey, entry: Entry) -> Agent | None:
        """Track a new agent from its first state event; ``None`` when the bound refuses it."""
        if len(self.agents) >= self.max_agents:
            self._forget_offline(self.accrued - self.retention)
            if len(self.agents) >= self.max_agents:
                self.capacity["agents"] = self.capacity.get("agents", 0) + 1
                return None
        agent, change = step(None, entry)
        assert agent is not None
        assert change is not None
        self.agents[key] = agent
        cw = self.by_channel[key[0]]
        cw.seen = True
        cw.counts[agent.state] += 1
        if agent.state == OFFLINE:
            self._offline[key] = None
        self._time(key[0], cw, OFFLINE, agent.state, entry[0])
        return agent

    def _account(self, key: AgentKey, change: Change) -> None:
        """Count and time a change of a known agent."""
        ts, old, new = change
        cw = self.by_channel[key[0]]
        self._count(key, cw, old, new)
        self._time(key[0], cw, old, new, ts)

    def _count(self, key: AgentKey, cw: _ChannelAgents, old: int, new: int) -> None:
        """The agent of ``key`` is in ``new`` now, no longer in ``old``."""
        cw.counts[old] -= 1
        cw.counts[new] += 1
        if old == OFFLINE:
            self._offline.pop(key, None)
        elif new == OFFLINE:
            self._offline[key] = None

    def _time(self, channel: str, cw: _ChannelAgents, old: int, new: int, ts: float) -> None:
        """Account the agent time of a change ``old`` -> ``new`` at ``ts`` (see the module doc)."""
        if old >= TIMED and new >= TIMED:
            return
        accrued = self.accrued
        t_ms = round(ts * 1000)
        if accrued == -math.inf:  # not started: time before the first second is not counted
            self._rate(cw, t_ms, old, new)
            return
        a_ms = int(accrued) * 1000
        if t_ms >= a_ms:
            self._seq += 1
            heapq.heappush(cw.sched, (t_ms, self._seq, old, new))
            return
        # Late: (ts, accrued] moves from the old state to the new, in the buckets still held.
        self._rate(cw, t_ms, old, new)
        windows = self.channels[channel].windows
        lo = max(t_ms, a_ms - self._max_width * 1000)
        for k in range(lo // 1000 + 1, int(accrued) + 1):
            ms = min(a_ms, k * 1000) - max(lo, (k - 1) * 1000)
            for agg in windows.second_targets(k):
                _add_ms(agg, old, -ms)
                _add_ms(agg, new, ms)
        today = windows.today_window()
        if today is not None:  # the today total also holds the time no bucket keeps any more
            start, total = today
            begin = t_ms if math.isinf(start) else max(t_ms, round(start * 1000))
            ms = lo - begin
            if ms > 0:
                _add_ms(total, old, -ms)
                _add_ms(total, new, ms)

    def _rate(self, cw: _ChannelAgents, t_ms: int, old: int, new: int) -> None:
        """``rate`` takes the change ``old`` -> ``new`` stamped ``t_ms`` (with ``exact_end``
        it is also kept in ``changed``)."""
        if old < TIMED:
            cw.rate[old] -= 1
        if new < TIMED:
            cw.rate[new] += 1
        if self.exact_end:
            cw.changed.append((t_ms, old, new))

    # ------------------------------------------------------------------ the clock

    def accrue(self, edge: float) -> None:
        """Add agent time per state up to ``edge`` to the channels' window buckets (called once
        per second of clock time, before the windows slide to ``edge``)."""
        end = int(edge)
        accrued = self.accrued
        if accrued == -math.inf:
            self.accrued = float(end)
            self._slide_arrivals(end)
            return
        if end <= accrued:
            return
        start = max(int(accrued), end - self._max_width)
        skipped = int(accrued)  # < start: a jump whose first seconds no sliding window holds
        channels = self.channels
        for name, cw in self.by_channel.items():
            if cw.sched:
                self._accrue_channel(name, cw, skipped, start, end)
                continue
            available, busy, acw = cw.rate
            if not (available or busy or acw):
                continue
            if end == start + 1:  # the usual one second, with no change in it: rate x 1000 ms
                channels[name].windows.add_agent_ms(end, available * 1000, busy * 1000, acw * 1000)
            else:
                self._accrue_channel(name, cw, skipped, start, end)
        self.accrued = float(end)
        self._slide_arrivals(end)
        if self._offline:
            self._forget_offline(end - self.retention)
        if self.exact_end:
            self._forget_changes(end)

    def _accrue_channel(
        self, name: str, cw: _ChannelAgents, skipped: int, start: int, end: int
    ) -> None:
        """Write the seconds ``start + 1 .. end`` of one channel, and the agent time of the
        seconds ``skipped + 1 .. start`` that a jump of the clock passed over (no sliding
        window holds them at ``end``) as far as the today window holds it."""
        windows = self.channels[name].windows
        # the today window's start only matters after a jump (a zoneinfo call per second else)
        today = windows.today_since(end) if skipped < start else math.inf
        self._skip(cw, windows, skipped, start, today)
        rate = cw.rate
        sched = cw.sched
        for k in range(start + 1, end + 1):
            hi = k * 1000
            ms = [rate[AVAILABLE] * 1000, rate[BUSY] * 1000, rate[ACW] * 1000]
            while sched and sched[0][0] <= hi:
                t_ms, _, old, new = heapq.heappop(sched)
                after = hi - t_ms  # the part of this second in the new state
                if old < TIMED:
                    ms[old] -= after
                if new < TIMED:
                    ms[new] += after
                self._rate(cw, t_ms, old, new)
            avail, busy, acw = ms
            if avail or busy or acw:
                windows.add_agent_ms(k, avail, busy, acw)

    def _skip(
        self, cw: _ChannelAgents, windows: SlidingWindows, skipped: int, start: int, today: float
    ) -> None:
        """Apply the changes stamped up to second ``start`` to the rate. The agent time of the
        seconds ``skipped + 1 .. start`` after ``today`` (the today window's start) goes into
        bucket ``start`` at once: the sliding windows drop that bucket as they slide to the end
        of the jump, and the today window keeps it (also when it restarts there, from the
        buckets after its day start)."""
        rate = cw.rate
        sched = cw.sched
        limit = start * 1000
        lo = limit if math.isinf(today) else max(skipped * 1000, round(today * 1000))
        ms = [0, 0, 0]
        t = skipped * 1000
        while sched and sched[0][0] <= limit:
            t_ms, _, old, new = heapq.heappop(sched)
            if t_ms > lo:
                span = t_ms - max(t, lo)
                ms = [ms[i] + rate[i] * span for i in range(TIMED)]
            t = t_ms
            self._rate(cw, t_ms, old, new)
        if limit > lo:
            span = limit - max(t, lo)
            ms = [ms[i] + rate[i] * span for i in range(TIMED)]
        if any(ms):
            windows.add_agent_ms(start, ms[AVAILABLE], ms[BUSY], ms[ACW])

    def _slide_arrivals(self, end: int) -> None:
        """Drop the arrival buckets with a key <= the new cut, visiting only the queues that
        hold one (``_arrival_due``), not every queue of every channel."""
        cut = end - self._shortest_width
        old = self._arrival_cut
        if cut <= old:
            return
        due = self._arrival_due
        if old != -math.inf and cut - old <= len(due):
            keys: Iterable[int] = range(int(old) + 1, cut + 1)
        else:
            keys = [key for key in due if key <= cut]
        for key in keys:
            for counts in due.pop(key, ()):
                counts.total -= counts.buckets.pop(key)
        fine = self._fine_arrivals
        if fine:
            for key in [key for key in fine if key <= cut]:
                del fine[key]
        self._arrival_cut = float(cut)

    def _forget_changes(self, end: int) -> None:
        """Drop the kept changes, oldest taken first, stamped in seconds no sliding window holds
        at ``end`` (a late one waits behind those taken before it)."""
        limit = (end - self._max_width) * 1000
        for cw in self.by_channel.values():
            changed = cw.changed
            while changed and changed[0][0] <= limit:
                changed.popleft()

    def end_at(self, now: float) -> None:
        """Cut the staffing arrivals and every sliding window's agent time exactly at ``now``
        (a replay's fractional last instant, once accrued to its second; ``exact_end`` only):
        take out the contacts queued, and the agent time, at or before ``now - W`` in the
        window's oldest second, which the one-second slide still holds. Nothing may change
        afterwards: only the readout."""
        if not self.exact_end:
            return
        edge = math.floor(now)
        if now == edge or self.accrued != edge:
            return
        width = self._shortest_width
        limit = now - width
        oldest = edge - width + 1
        for counts, ts in self._fine_arrivals.get(oldest, ()):
            if ts <= limit:
                counts.total -= 1
                counts.buckets[oldest] -= 1
        self._fine_arrivals = {}
        for name, cw in self.by_channel.items():
            windows = self.channels[name].windows
            for i, (window, span) in enumerate(zip(windows.names, windows.spans, strict=True)):
                if window == TODAY:
                    continue
                start = edge - math.ceil(span)  # the second (start, start + 1] is the oldest
                ms = self._time_between(cw, start * 1000, round((now - math.ceil(span)) * 1000))
                total = windows.totals[i]
                total.agent_available_ms -= ms[AVAILABLE]
                total.agent_busy_ms -= ms[BUSY]
                total.agent_acw_ms -= ms[ACW]
            cw.changed.clear()

    def _time_between(self, cw: _ChannelAgents, lo: int, hi: int) -> list[int]:
        """Agent-milliseconds per timed state in ``(lo, hi]`` (milliseconds at or before
        ``accrued``): ``rate`` taken back over the kept changes after ``lo``, then run forward
        over those up to ``hi``."""
        rate = list(cw.rate)
        after = sorted(entry for entry in cw.changed if entry[0] > lo)
        for _, old, new in after:
            if old < TIMED:
                rate[old] += 1
            if new < TIMED:
                rate[new] -= 1
        ms = [0] * TIMED
        at = lo
        for t_ms, old, new in after:
            if t_ms > hi:
                break
            for i in range(TIMED):
                ms[i] += rate[i] * (t_ms - at)
            at = t_ms
            if old < TIMED:
                rate[old] -= 1
            if new < TIMED:
                rate[new] += 1
        for i in range(TIMED):
            ms[i] += rate[i] * (hi - at)
        return ms

    def _forget_offline(self, cutoff: float) -> None:
        """Forget agents offline since before ``cutoff``, in the order they went offline (one that
        went offline with an older ``ts`` after another waits for it)."""
        offline = self._offline
        agents = self.agents
        while offline:
            key = next(iter(offline))
            agent = agents[key]
            if agent.entered >= cutoff:
                return
            del offline[key]
            del agents[key]
            self.by_channel[key[0]].counts[OFFLINE] -= 1

    # ------------------------------------------------------------------ read side

    def seen(self, channel: str) -> bool:
        """An agent was seen in ``channel`` (its workforce rows are exported)."""
        return self.by_channel[channel].seen

    def working(self, channel: str) -> int | None:
        """Agents available, busy or in after-call work now; ``None`` before an agent was seen
        in ``channel``."""
        cw = self.by_channel[channel]
        if not cw.seen:
            return None
        counts = cw.counts
        return counts[AVAILABLE] + counts[BUSY] + counts[ACW]

    def counts(self, channel: str) -> dict[str, int]:
        """Agents per state now."""
        return dict(zip(AGENT_STATES, self.by_channel[channel].counts, strict=True))

    def agents_on(self, channel: str) -> int:
        """Agents of ``channel`` available or busy now: the metric contract's N for every queue
        of the channel ("the agents currently available or busy on the queue's channel"), an
        agent's ``queues`` notwithstanding."""
        counts = self.by_channel[channel].counts
        return counts[AVAILABLE] + counts[BUSY]

    def arrivals(self, channel: str, queue: str) -> int:
        """Contacts queued on ``queue`` within the shortest window."""
        counts = self.by_channel[channel].arrivals.get(queue)
        return 0 if counts is None else counts.total

    def unaccrued_ms(self, channel: str, now: float) -> tuple[int, int, int]:
        """Agent-milliseconds per timed state (available, busy, after-call work) in
        ``(accrued, now]``: the part of the current second that no bucket holds yet while the
        clock is between two whole seconds. Read from ``rate`` and the scheduled changes, which
        stay scheduled (each change moves its ``(t, now]`` from the old state to the new)."""
        cw = self.by_channel.get(channel)
        accrued = self.accrued
        if cw is None or accrued == -math.inf or now <= accrued:
            return (0, 0, 0)
        hi = round(now * 1000)
        span = hi - int(accrued) * 1000
        ms = [count * span for count in cw.rate]
        for t_ms, _, old, new in cw.sched:
            if t_ms <= hi:
                if old < TIMED:
                    ms[old] -= hi - t_ms
                if new < TIMED:
                    ms[new] += hi - t_ms
        return ms[AVAILABLE], ms[BUSY], ms[ACW]

    def handle_time(self, channel: str, now: float = -math.inf) -> float:
        """Mean handle time in seconds: (talk ms + after-call-work ms) / contacts ended, over the
        shortest window with an ended contact (then the next longer one); NaN when none has.
        ``now``: the clock, whose part-second of after-call work counts too."""
        windows = self.channels[channel].windows
        for _, agg in sorted(zip(windows.spans, windows.totals, strict=True), key=_by_span):
            if agg.handled > 0:
                acw = agg.agent_acw_ms + self.unaccrued_ms(channel, now)[ACW]
                return (agg.handle_ms + acw) / agg.handled / 1000
        return math.nan

    def staffing(self, channel: str, queue: str, now: float = -math.inf) -> Staffing | None:
        """Erlang C for one queue at the clock ``now`` (see :meth:`handle_time`; with the
        channel's ``agent_concurrency``); ``None`` for a channel without ``answer_seconds``."""
        ch = self.channels[channel]
        answer = ch.settings.answer_seconds
        if answer is None:
            return None
        target = ch.settings.service_level_target
        if target is None:
            target = DEFAULT_SERVICE_LEVEL_TARGET
        rate = self.arrivals(channel, queue) / self.shortest_span
        handle = self.handle_time(channel, now)
        agents = self.agents_on(channel)
        concurrency = ch.settings.concurrency
        key = (rate, handle, float(agents), answer, target, float(concurrency))
        cache = self.by_channel[channel].cache
        hit = cache.get(queue)
        if hit is not None and (hit[0] == key or _same_nan(hit[0], key)):
            return hit[1]
        result = staffing(rate, handle, agents, answer, target, concurrency=concurrency)
        cache[queue] = (key, result)
        return result

    def agent_rows(
        self, now: float, limit: int = DEFAULT_AGENT_ROWS, channel: str | None = None
    ) -> list[dict[str, Any]]:
        """Per-agent drill-down: at most ``limit`` rows, sorted by channel then agent id, each
        ``{"channel", "agent_id", "state", "seconds_in_state", "contacts_handled"}``."""
        keys = self.agents if channel is None else [key for key in self.agents if key[0] == channel]
        rows = []
        for key in heapq.nsmallest(max(0, limit), keys):
            agent = self.agents[key]
            rows.append(
                {
                    "channel": key[0],
                    "agent_id": key[1],
                    "state": AGENT_STATES[agent.state],
                    "seconds_in_state": max(0.0, now - agent.entered),
                    "contacts_handled": agent.handled,
                }
            )
        return rows

    # ------------------------------------------------------------------ export / restore

    def export(self) -> Any:  # noqa: ANN401 - plain msgpack-able data
        """Plain data (lists, dicts, str, numbers) for a snapshot; :meth:`restore` takes it."""
        return {
            "version": EXPORT_VERSION,
            "accrued": self.accrued,
            "arrival_cut": self._arrival_cut,
            "seq": self._seq,
            "superseded": self.superseded,
            "agents": [
                [
                    ch,
                    agent_id,
                    a.state,
                    a.since,
                    a.entered,
                    None if a.queues is None else list(a.queues),
                    a.implied,
                    a.talking,
                    a.handled,
                    None,  # the tenth field of older rows (see restore)
                    a.newest,
                    _export_log(a),
                ]
                for (ch, agent_id), a in self.agents.items()
            ],
            "offline": [list(key) for key in self._offline],
            "channels": {
                name: {
                    "seen": cw.seen,
                    "rate": list(cw.rate),
                    "sched": [list(entry) for entry in cw.sched],
                    "arrivals": {
                        queue: [[key, n] for key, n in sorted(counts.buckets.items())]
                        for queue, counts in cw.arrivals.items()
                    },
                }
                for name, cw in self.by_channel.items()
            },
        }

    def restore(self, state: Any) -> None:  # noqa: ANN401 - as export gives it
        """Take over ``state`` (as :meth:`export` gives it, possibly through msgpack). Agents of
        channels no longer configured are dropped. ``None`` (a snapshot without workforce
        state) leaves the workforce empty."""
        if state is None:
            return
        self.agents = {}
        self.by_channel = {name: _ChannelAgents() for name in self.channels}
        self._arrival_due = {}
        self._fine_arrivals = {}  # not in snapshots: the arrivals restored are whole buckets
        self.accrued = float(state["accrued"])
        self._arrival_cut = float(state["arrival_cut"])
        self._seq = int(state["seq"])
        self.superseded = int(state["superseded"])
        for row in state["agents"]:
            # a row written while agents kept the time of their last ``agent.state`` has a
            # tenth field, which ``since`` now covers; the eleventh is ``newest`` (a row
            # without it: ``since``)
            ch, agent_id, st, since, entered, queues, implied, talking, handled, *rest = row
            cw = self.by_channel.get(ch)
            if cw is None:
                continue
            agent = Agent(_state(st), since, None if queues is None else tuple(queues))
            agent.entered = entered
            agent.newest = rest[1] if len(rest) > 1 and rest[1] is not None else since
            agent.latest = agent.newest
            if len(rest) > 2:  # the twelfth: what puts late events in order (_export_log)
                _restore_log(agent, rest[2])
            agent.implied = implied
            agent.talking = talking
            agent.handled = handled
            self.agents[ch, agent_id] = agent
            cw.counts[st] += 1
        self._offline = {
            (ch, agent_id): None
            for ch, agent_id in state["offline"]
            if (ch, agent_id) in self.agents
        }
        for name, stored in state["channels"].items():
            cw = self.by_channel.get(name)
            if cw is None:
                continue
            cw.seen = stored["seen"]
            cw.rate = list(stored["rate"])
            cw.sched = [(t, seq, old, new) for t, seq, old, new in stored["sched"]]
            heapq.heapify(cw.sched)
            for queue, buckets in stored["arrivals"].items():
                counts = cw.arrivals[queue] = _Arrivals()
                counts.buckets = {int(k): int(n) for k, n in buckets}
                counts.total = sum(counts.buckets.values())
                for key in counts.buckets:
                    self._arrival_due.setdefault(key, []).append(counts)


def _export_log(agent: Agent) -> list[Any]:
    """``[latest, floor, base, entries]``: what an agent keeps to put a late event in ``ts``
    order (``base``: ``None`` or its fields; ``entries``: empty without a log)."""
    fields: list[Any] | None = None
    if agent.base is not None:
        fields = list(agent.base)
        queues = agent.base[4]
        fields[4] = None if queues is None else list(queues)
    entries = [
        [ts, kind, st, None if q is None else list(q), ans]
        for ts, kind, st, q, ans in agent.log or ()
    ]
    return [agent.latest, agent.floor, fields, entries]


def _restore_log(agent: Agent, stored: list[Any]) -> None:
    """Take back what :func:`_export_log` gave."""
    latest, floor, fields, entries = stored
    agent.latest = max(agent.newest, float(latest))
    agent.floor = float(floor)
    base: Facts | None = None
    if fields is not None:
        st, since, newest, entered, queues, implied, talking, last = fields
        queues = None if queues is None else tuple(str(q) for q in queues)
        base = (
            _state(st),
            float(since),
            float(newest),
            float(entered),
            queues,
            bool(implied),
            int(talking),
            float(last),
        )
    log: list[Entry] = [
        (float(ts), _kind(kind), _state(st), None if q is None else tuple(q), float(ans))
        for ts, kind, st, q, ans in entries
    ]
    if any(a[0] > b[0] for a, b in itertools.pairwise(log)):
        raise ValueError("an agent's stored state events are not in ts order")
    if base is None and log and log[0][1] == ENDED:  # an agent is first seen by a state event
        raise ValueError("an agent's stored state events start with an end")
    if log:
        agent.base, agent.log = base, log


def _state(stored: object) -> int:
    """A stored state index; one out of range is refused (a negative one would count from the
    end)."""
    if not isinstance(stored, int) or not 0 <= stored < len(AGENT_STATES):
        raise ValueError(f"stored agent state {stored!r} is not one of {len(AGENT_STATES)}")
    return stored


def _kind(stored: object) -> int:
    if not isinstance(stored, int) or stored not in (STATE, ANSWERED, ENDED):
        raise ValueError(f"stored agent event kind {stored!r} is not known")
    return stored


def _entry_ts(entry: Entry) -> float:
    return entry[0]


def _by_span(item: tuple[float, Agg]) -> float:
    return item[0]


def _same_nan(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Equal, NaN equal to NaN (an unknown handle time is a cache hit too)."""
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))
