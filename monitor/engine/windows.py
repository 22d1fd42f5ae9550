"""Sliding windows over event time, one-second buckets, exact running totals.

An outcome at time ``t`` is filed in bucket ``ceil(t)``, which holds the times ``(k - 1, k]``.
The windows slide once per whole second ``E = floor(now)``; a window of span ``W`` then holds the
buckets ``k > E - ceil(W)``, i.e. exactly the outcomes with ``E - ceil(W) < t <= now``. With a
whole-second ``now`` and span that is ``(now - W, now]`` (left-open, as Prometheus 3 range
selectors), with no partial bucket at either end; between two whole seconds the window also holds
the part of the current second seen so far, and the part of its oldest second at or before
``now - W``. A replay, whose exposition is read at its fractional last instant, keeps the outcomes
of each fractional instant apart as well (``exact_end``) and takes that part out at the end
(:meth:`SlidingWindows.end_at`). Outcomes are added to their bucket and to every
window total that still holds it; when the edge moves, buckets that slid out are subtracted
(a bucket that holds only agent time, written once a second by the workforce, subtracts only
those three counts).
Totals are therefore counts, never averages, and reading a windowed gauge costs O(1)
(O(buckets) for the wait quantiles).

The ``today`` window is a day, not a slide: it holds the outcomes with ``D <= t <= now`` for the
latest local day start ``D``, so an outcome stamped exactly at a day start is the new day's (its
local date's), not the day before's. Its bucket ``ceil(t) = D`` also holds the end of the day
before, so such an outcome is added to the today total directly: at once when the day has
begun, or, when it comes before the clock reached its day start (a source ahead of the clock),
to a pending aggregate that the reset at ``D`` adds to the new day's total.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Callable
from typing import ClassVar

import msgspec

from support_monitor.monitor.engine.sketch import add_into

TODAY = "today"
"""The window that holds the day so far (``day_starts_at`` in ``timezone``)."""
_COMPACT_AFTER = 1024
"""Dropped keys kept at the start of ``SlidingWindows._keys`` before they are deleted at once."""


class Agg(msgspec.Struct, gc=False):
    """Counts of one bucket or one window of a channel.

    An untracked msgspec struct (as ``Contact``): a channel keeps one per second of its longest
    window (3,600 for ``1h``), so 100 channels hold a few hundred thousand, and the cyclic GC
    walking them made a full collection take ~150 ms (measured in ``bench/scrape_time.py``).
    It holds only integers and its ``waits`` dict of integers, so it is never part of a
    reference cycle."""

    queued: int = 0
    answered: int = 0
    answered_in_sla: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    breaches_answer: int = 0
    breaches_first_response: int = 0
    breaches_resolution: int = 0
    breaches_next_reply: int = 0
    created: int = 0
    solved: int = 0
    ratings: int = 0
    satisfied: int = 0
    complaints: int = 0
    wait_ms: int = 0
    """Sum of answered waits in integer ms: exact under add and subtract."""
    solved_first_contact: int = 0
    reopened: int = 0
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
    handled: int = 0
    handle_ms: int = 0
    agent_available_ms: int = 0
    agent_busy_ms: int = 0
    agent_acw_ms: int = 0
    """Agent time per state in integer agent-milliseconds (``handle_ms`` likewise: talk time of
    the contacts that ended in the bucket)."""
    waits: dict[int, int] = msgspec.field(default_factory=dict)

    INTS: ClassVar[tuple[str, ...]] = (  # snapshots store them in this order: append only
        "queued",
        "answered",
        "answered_in_sla",
        "abandoned",
        "abandoned_short",
        "breaches_answer",
        "breaches_first_response",
        "breaches_resolution",
        "created",
        "solved",
        "ratings",
        "satisfied",
        "complaints",
        "wait_ms",
        "solved_first_contact",
        "reopened",
        "nps_responses",
        "nps_promoters",
        "nps_detractors",
        "ces_responses",
        "ces_sum",
        "bot_sessions",
        "bot_contained",
        "bot_escalated",
        "sentiments",
        "sentiment_negative",
        "sentiment_positive",
        "handled",
        "handle_ms",
        "agent_available_ms",
        "agent_busy_ms",
        "agent_acw_ms",
        "breaches_next_reply",
    )

    def add(self, other: Agg, sign: int) -> None:
        """``self += sign * other``, every count in :attr:`INTS` and the waits sketch (written
        out field by field: a loop over the names cost ~3x as much, once per slid bucket)."""
        self.queued += sign * other.queued
        self.answered += sign * other.answered
        self.answered_in_sla += sign * other.answered_in_sla
        self.abandoned += sign * other.abandoned
        self.abandoned_short += sign * other.abandoned_short
        self.breaches_answer += sign * other.breaches_answer
        self.breaches_first_response += sign * other.breaches_first_response
        self.breaches_resolution += sign * other.breaches_resolution
        self.breaches_next_reply += sign * other.breaches_next_reply
        self.created += sign * other.created
        self.solved += sign * other.solved
        self.ratings += sign * other.ratings
        self.satisfied += sign * other.satisfied
        self.complaints += sign * other.complaints
        self.wait_ms += sign * other.wait_ms
        self.solved_first_contact += sign * other.solved_first_contact
        self.reopened += sign * other.reopened
        self.nps_responses += sign * other.nps_responses
        self.nps_promoters += sign * other.nps_promoters
        self.nps_detractors += sign * other.nps_detractors
        self.ces_responses += sign * other.ces_responses
        self.ces_sum += sign * other.ces_sum
        self.bot_sessions += sign * other.bot_sessions
        self.bot_contained += sign * other.bot_contained
        self.bot_escalated += sign * other.bot_escalated
        self.sentiments += sign * other.sentiments
        self.sentiment_negative += sign * other.sentiment_negative
        self.sentiment_positive += sign * other.sentiment_positive
        self.handled += sign * other.handled
        self.handle_ms += sign * other.handle_ms
        self.agent_available_ms += sign * other.agent_available_ms
        self.agent_busy_ms += sign * other.agent_busy_ms
        self.agent_acw_ms += sign * other.agent_acw_ms
        if other.waits:
            add_into(self.waits, other.waits, sign)


class WindowsState(msgspec.Struct):
    """What :meth:`SlidingWindows.export` gives and :meth:`SlidingWindows.restore` takes."""

    cuts: list[float]
    """Per window: buckets with a key <= this are out of it."""
    totals: list[Agg]
    """Per window, in the order of ``names``."""
    buckets: list[tuple[int, Agg]]
    """(key, bucket), ascending keys."""
    pending_day: tuple[int, Agg] | None = None
    """Outcomes stamped exactly at a day start the clock has not reached (its epoch second),
    which the today window's reset there takes in; ``None``: none."""


class SlidingWindows:
    """Buckets and running totals of one channel for every configured window."""

    __slots__ = (
        "_buckets",
        "_cached",
        "_cached_key",
        "_cut_list",
        "_day_start",
        "_events",
        "_fine",
        "_head",
        "_keys",
        "_max_cut",
        "_max_width",
        "_min_cut",
        "_min_width",
        "_next_reset",
        "_pending_day",
        "_sliding",
        "_today",
        "_widths",
        "names",
        "spans",
        "totals",
    )

    def __init__(
        self,
        spans: dict[str, float],
        day_start: Callable[[float], float] | None = None,
        *,
        exact_end: bool = False,
    ) -> None:
        """``spans``: window name -> span in seconds. A window named ``today`` (with
        ``day_start``: the latest local day start at or before an instant) is not sliding: it
        holds the outcomes since the most recent day start and resets exactly at the next.
        ``exact_end``: also keep the outcomes of each fractional instant apart (one aggregate per
        instant, for the seconds a sliding window holds), so that :meth:`end_at` can cut every
        window exactly at a fractional last instant (a replay's end)."""
        self.names = tuple(spans)
        self.spans = tuple(spans.values())
        self.totals = tuple(Agg() for _ in self.names)
        self._today = self.names.index(TODAY) if TODAY in spans and day_start else -1
        self._day_start = day_start
        self._next_reset = -math.inf
        # Whole buckets per window (the today window keeps none of its own: it is summed as
        # outcomes come and recomputed from the kept buckets only at its reset).
        self._widths = tuple(
            0 if i == self._today else math.ceil(span) for i, span in enumerate(self.spans)
        )
        self._max_width = max(self._widths)
        self._min_width = min(
            (w for i, w in enumerate(self._widths) if i != self._today), default=0
        )
        self._sliding = tuple((i, w) for i, w in enumerate(self._widths) if i != self._today)
        """(index, whole buckets) of the windows that slide (all but the today window)."""
        self._cuts = [-math.inf] * len(self.names)  # buckets <= cut are out of that window
        self._buckets: dict[int, Agg] = {}
        self._keys: list[int] = []
        """The kept buckets' keys from index ``_head`` on, ascending; the entries before it are
        dropped buckets' keys, deleted from the list in batches (one per second would move the
        whole list each time)."""
        self._head = 0
        self._events: set[int] = set()
        """Keys of the kept buckets :meth:`targets` handed out (any count may be set in them);
        the others hold only agent time (:meth:`add_agent_ms`), and sliding one out subtracts
        just that."""
        self._cached_key: float = math.nan  # targets() of the last second asked for
        self._cached: list[Agg] = []
        self._pending_day: tuple[int, Agg] | None = None
        """Outcomes stamped exactly at a day start still ahead of the clock (module doc)."""
        self._fine: dict[int, dict[float, Agg]] | None = {} if exact_end else None
        """With ``exact_end``: bucket key -> fractional instant in it -> the outcomes at that
        instant (whole-second instants need none: a window holds all of their bucket or none)."""

    @property
    def _cuts(self) -> list[float]:
        """Per window: buckets with a key <= this are out of it. Setting it (``advance``, a
        snapshot restore) also sets the min and max that ``targets`` compares with."""
        return self._cut_list

    @_cuts.setter
    def _cuts(self, cuts: list[float]) -> None:
        self._cut_list = cuts
        self._min_cut = min(cuts)
        self._max_cut = max(cuts)

    def export(self) -> WindowsState:
        """The cuts (copied), totals and buckets in key order. The aggregates are the live ones,
        not copies: read them before the windows change again."""
        buckets = self._buckets
        return WindowsState(
            list(self._cuts),
            list(self.totals),
            [(key, buckets[key]) for key in self._keys[self._head :]],
            self._pending_day,
        )

    def restore(self, state: WindowsState) -> None:
        """Take over ``state`` (as :meth:`export` gives it, one total per window, ascending
        bucket keys); the aggregates are used as they are, not copied."""
        if len(state.cuts) != len(self.names) or len(state.totals) != len(self.names):
            msg = "window count differs from the config"
            raise ValueError(msg)
        self._cuts = list(state.cuts)
        self._next_reset = -math.inf  # recomputed from the restored cut at the next advance
        self.totals = tuple(state.totals)
        self._buckets = dict(state.buckets)
        self._keys = [key for key, _ in state.buckets]
        self._head = 0
        self._events = set(self._keys)  # whatever they hold: each slides out in full
        self._cached_key = math.nan
        self._cached = []
        self._pending_day = state.pending_day if self._today >= 0 else None
        if self._fine is not None:
            self._fine = {}  # not in snapshots: the outcomes restored are whole buckets

    @property
    def next_reset(self) -> float:
        """When the today window resets next (``inf`` without one)."""
        return self._next_reset if self._today >= 0 else math.inf

    def _reset_today(self, edge: int) -> bool:
        """At (or past) the day start: the today window restarts from it, holding the kept
        buckets after it (outcomes already filed since the reset instant)."""
        day_start = self._day_start
        assert day_start is not None
        cut = day_start(edge)
        self._next_reset = day_start(cut + 26 * 3600)  # the next day start (days are 23-25 h)
        if self._next_reset <= edge:  # pragma: no cover - day_start is monotonic
            self._next_reset = edge + 1
        cuts = self._cut_list
        if cut <= cuts[self._today]:
            return False
        cuts[self._today] = cut
        total = Agg()
        keys = self._keys
        for key in keys[bisect_right(keys, cut, self._head) :]:
            total.add(self._buckets[key], 1)
        pending = self._pending_day
        if pending is not None and pending[0] <= cut:
            self._pending_day = None
            if pending[0] == cut:  # stamped exactly at this day start: the new day's
                total.add(pending[1], 1)
        totals = list(self.totals)
        totals[self._today] = total
        self.totals = tuple(totals)
        self._cached_key = math.nan
        return True

    def today_window(self) -> tuple[float, Agg] | None:
        """The today window's start (it holds the seconds after it) and its total; ``None``
        without a today window."""
        if self._today < 0:
            return None
        return self._cut_list[self._today], self.totals[self._today]

    def total(self, window: str) -> Agg:
        return self.totals[self.names.index(window)]

    def today_since(self, edge: int) -> float:
        """Where the today window starts once the windows are at ``edge`` (the latest day start
        at or before it); ``inf`` without a today window."""
        if self._today < 0 or self._day_start is None:
            return math.inf
        return self._day_start(edge)

    def targets(self, ts: float) -> list[Agg]:
        """The aggregates an outcome at the instant ``ts`` must be added to (its bucket and
        open windows; at exactly a day start, the today total of the day it starts)."""
        key = math.ceil(ts)
        if key == ts and self._today >= 0 and self._is_day_start(key):
            return self._day_start_targets(key)
        if self._fine is not None and key != ts:
            return self._fine_targets(key, ts)
        if key == self._cached_key:
            return self._cached  # most outcomes land in the current second
        return self.second_targets(key)

    def second_targets(self, key: int) -> list[Agg]:
        """The aggregates of the second ``(key - 1, key]`` as a whole (its bucket and the
        windows that hold it), e.g. for the agent time spent in it."""
        if key == self._cached_key:
            return self._cached  # most outcomes land in the current second
        if key <= self._min_cut:
            return []  # slid out of every window already
        bucket = self._bucket(key)
        if key > self._max_cut:
            out = [bucket, *self.totals]  # still in every window (the usual case)
        else:
            out = [bucket]
            for cut, total in zip(self._cuts, self.totals, strict=True):
                if key > cut:
                    out.append(total)
        self._cached_key, self._cached = key, out
        return out

    def _fine_targets(self, key: int, ts: float) -> list[Agg]:
        """:meth:`targets` with ``exact_end``, of the fractional instant ``ts`` in bucket ``key``:
        also its instant's own aggregate while a sliding window holds the bucket."""
        out = self.second_targets(key)
        if key <= self._sliding_floor():
            return out
        kept = self._fine
        assert kept is not None  # targets() asks only with exact_end
        instants = kept.setdefault(key, {})
        fine = instants.get(ts)
        if fine is None:
            fine = instants[ts] = Agg()
        return [*out, fine]

    def _sliding_floor(self) -> float:
        """The largest bucket key no sliding window holds (``-inf`` before the first slide,
        ``inf`` without a sliding window)."""
        return min((self._cut_list[i] for i, _ in self._sliding), default=math.inf)

    def end_at(self, now: float) -> None:
        """Cut every sliding window exactly at ``now``, once the windows are at its second and
        nothing more will be added (a replay's last instant): subtract from each window the
        outcomes of the fractional instants ``t <= now - W`` in its oldest bucket, which the
        one-second slide still holds between two whole seconds. Needs ``exact_end`` (else
        nothing changes); the totals are then final: only the readout may follow."""
        fine = self._fine
        if not fine:
            return
        edge = math.floor(now)
        totals = self.totals
        for i, width in self._sliding:
            cut = edge - width
            if self._cut_list[i] != cut:
                continue  # pragma: no cover - the caller advanced the windows to now first
            limit = now - width
            for ts, agg in fine.get(cut + 1, {}).items():
                if ts <= limit:
                    totals[i].add(agg, -1)
        self._fine = {}

    def _is_day_start(self, key: int) -> bool:
        """Whether the whole second ``key`` is the current day's start or the next one (asked
        of the calendar only before the first :meth:`advance` has set them)."""
        if key == self._cut_list[self._today] or key == self._next_reset:
            return True
        day_start = self._day_start
        return self._next_reset == -math.inf and day_start is not None and day_start(key) == key

    def _day_start_targets(self, key: int) -> list[Agg]:
        """:meth:`targets` of an outcome stamped exactly at the day start ``key``: the sliding
        windows as for any outcome, and the today total of the day ``key`` starts: the current
        one once the clock reached it, else the pending one its reset takes in."""
        out = [] if key <= self._min_cut else [self._bucket(key)]
        today_total = self.totals[self._today]
        out += [
            total
            for cut, total in zip(self._cut_list, self.totals, strict=True)
            if key > cut and total is not today_total
        ]
        if key == self._cut_list[self._today]:
            out.append(today_total)
            return out
        pending = self._pending_day
        if pending is None or pending[0] != key:
            pending = self._pending_day = (key, Agg())
        out.append(pending[1])
        return out

    def _bucket(self, key: int) -> Agg:
        """Bucket ``key``, created if need be, counted as one :meth:`targets` handed out."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._new_bucket(key)
        self._events.add(key)
        return bucket

    def _new_bucket(self, key: int) -> Agg:
        bucket = self._buckets[key] = Agg()
        keys = self._keys
        if len(keys) == self._head or key > keys[-1]:
            keys.append(key)
        else:
            insort(keys, key, self._head)
        return bucket

    def add_agent_ms(self, key: int, available: int, busy: int, acw: int) -> None:
        """Add agent time (agent-milliseconds per timed state) to bucket ``key`` and to every
        window total still holding it: what adding them to each of :meth:`targets` would do,
        without counting the bucket as one :meth:`targets` handed out."""
        if key <= self._min_cut:
            return
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._new_bucket(key)
        bucket.agent_available_ms += available
        bucket.agent_busy_ms += busy
        bucket.agent_acw_ms += acw
        if key > self._max_cut:
            for total in self.totals:
                total.agent_available_ms += available
                total.agent_busy_ms += busy
                total.agent_acw_ms += acw
            return
        for cut, total in zip(self._cut_list, self.totals, strict=True):
            if key > cut:
                total.agent_available_ms += available
                total.agent_busy_ms += busy
                total.agent_acw_ms += acw

    def advance(self, now: float) -> None:
        """Slide every window to the edge ``floor(now)``; drop buckets no window holds any more."""
        self._cached_key = math.nan
        edge = math.floor(now)
        moved = False
        if self._today >= 0 and edge >= self._next_reset:
            moved = self._reset_today(edge)
        cuts = self._cut_list
        totals = self.totals
        buckets = self._buckets
        events = self._events
        steady = True  # no window's cut was already past the edge less its width
        for i, width in self._sliding:
            cut = edge - width
            old = cuts[i]
            if cut <= old:
                steady = False
                continue
            moved = True
            if cut == old + 1:  # the usual one-second step: at most one bucket slides out
                bucket = buckets.get(cut)
                if bucket is not None:
                    total = totals[i]
                    if cut in events:
                        total.add(bucket, -1)
                    else:  # agent time only (add_agent_ms): its three counts
                        total.agent_available_ms -= bucket.agent_available_ms
                        total.agent_busy_ms -= bucket.agent_busy_ms
                        total.agent_acw_ms -= bucket.agent_acw_ms
            else:
                self._slide(totals[i], old, cut)
            cuts[i] = cut
        if moved:
            self._bound_cuts(edge, steady=steady)
        last = edge - self._max_width
        keys = self._keys
        if len(keys) > self._head and keys[self._head] <= last:
            self._drop_until(last)

    def _bound_cuts(self, edge: int, *, steady: bool) -> None:
        """Set the min and max cut that ``targets`` compares with after a slide to ``edge``.
        ``steady``: every sliding window's cut is the edge less its width (none was past it)."""
        cuts = self._cut_list
        if not steady or not self._sliding:
            self._min_cut = min(cuts)
            self._max_cut = max(cuts)
            return
        low: float = edge - self._max_width
        high: float = edge - self._min_width
        if self._today >= 0:
            today_cut = cuts[self._today]
            low = min(low, today_cut)
            high = max(high, today_cut)
        self._min_cut = low
        self._max_cut = high

    def _slide(self, total: Agg, old: float, cut: int) -> None:
        """Subtract from ``total`` the buckets with a key in ``(old, cut]``."""
        keys = self._keys
        buckets = self._buckets
        head = self._head
        start = head if old == -math.inf else bisect_right(keys, old, head)
        for key in keys[start : bisect_right(keys, cut, head)]:
            total.add(buckets[key], -1)

    def _drop_until(self, last: int) -> None:
        """Forget the buckets with a key <= ``last`` (no sliding window holds them)."""
        keys = self._keys
        head = self._head
        end = len(keys)
        buckets = self._buckets
        events = self._events
        fine = self._fine
        while head < end and keys[head] <= last:
            key = keys[head]
            del buckets[key]
            events.discard(key)
            if fine:
                fine.pop(key, None)
            head += 1
        if head == end or head >= _COMPACT_AFTER:
            del keys[:head]
            head = 0
        self._head = head
