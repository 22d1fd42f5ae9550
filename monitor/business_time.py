"""Business time: how many seconds of a weekly calendar lie between two instants, and when a
target in business seconds is reached (``docs/business-hours.md``).

A :class:`BusinessCalendar` is an IANA zone, weekly hours (weekday ``0`` = Monday .. ``6`` =
Sunday, each a sorted list of ``(start, end)`` local times of day in seconds since local midnight,
``end`` up to ``86400`` = 24:00) and holiday dates (no business time all day). Instants in and out
are epoch seconds (``float``).

How local times become instants:

- Every local date ``d`` owns the instants from its midnight to the next one; a midnight is
  converted with ``fold=0``. Days of 23 or 25 hours therefore hold 23 or 25 hours, and the days
  tile time without gap or overlap (a date the zone skips entirely, as Pacific/Apia did on
  2011-12-30, owns no instant).
- A shift boundary is converted the same way, with ``fold=0`` (zoneinfo): a time the zone repeats
  (the hour after a fall-back) means its first occurrence; a time the zone skips (the hour of a
  spring-forward) is read with the UTC offset in force before the change, so it lands as far
  after the change as it was written after the start of the skipped hour (Europe/Berlin,
  2026-03-29: ``02:30`` is 01:30 UTC = 03:30 CEST). A shift is the instants from its converted
  start to its converted end, clipped to its day; a shift whose converted end is not after its
  converted start has no business time, and shifts that overlap once converted are merged, so
  no instant counts twice. So 01:00-04:00 on a spring-forward day holds 2 h, on a fall-back day
  4 h; 02:30-06:00 on Berlin's spring-forward day holds 2.5 h.

Speed and bounds: a walk goes day by day, and over a whole Monday-to-Sunday week at once from
its total. Each calendar caches at most :data:`CACHE_DAYS` converted days, as many local
midnights and :data:`CACHE_WEEKS` week totals (least recently used first out).
:meth:`BusinessCalendar.add` walks at most :data:`MAX_WALK_DAYS` local days and reports a
deadline further away as ``math.inf`` (never due); ``back`` likewise with ``-math.inf``.
Instants before local ``0001-01-03`` or from local ``9999-12-28`` on are clamped to those days'
midnights (no business time outside them), so no finite input raises; NaN is refused
(``ValueError``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CACHE_DAYS", "CACHE_WEEKS", "DAY_SECONDS", "MAX_WALK_DAYS", "BusinessCalendar"]

DAY_SECONDS = 86400
"""A local day as written in the weekly hours: ``end == DAY_SECONDS`` is 24:00."""
CACHE_DAYS = 1024
"""Converted local days (about 300 bytes each) and local midnights kept per calendar."""
CACHE_WEEKS = CACHE_DAYS // 7
"""Business seconds of whole weeks (Monday to Sunday) kept per calendar, to skip them at once."""
MAX_WALK_DAYS = 3660
""":meth:`BusinessCalendar.add` and ``back`` give up after this many local days (ten years)."""

_FIRST_DAY = date(1, 1, 3)
_LAST_DAY = date(9999, 12, 28)  # the first day that holds no business time at the top
_ONE_DAY = timedelta(days=1)
_ONE_WEEK = timedelta(days=7)
_LAST_MONDAY = _LAST_DAY - timedelta(days=_LAST_DAY.weekday() + 7)  # its week ends before

Shift = tuple[int, int]
"""One shift: local start and end in seconds since local midnight."""


class _Day(NamedTuple):
    """One local date converted: the instants it owns and its business intervals in them."""

    begin: float
    end: float
    intervals: tuple[tuple[float, float], ...]
    total: float


def _check_week(hours: Mapping[int, Sequence[tuple[int, int]]]) -> tuple[tuple[Shift, ...], ...]:
    week: list[tuple[Shift, ...]] = []
    unknown = sorted(set(hours) - set(range(7)))
    if unknown:
        raise ValueError(f"weekdays are 0 (Monday) .. 6 (Sunday), got {unknown}")
    for weekday in range(7):
        shifts: list[Shift] = []
        for start, end in hours.get(weekday, ()):
            if not 0 <= start < end <= DAY_SECONDS:
                raise ValueError(
                    f"weekday {weekday}: shift ({start}, {end}) is not 0 <= start < end <= 86400"
                )
            if shifts and start < shifts[-1][1]:
                raise ValueError(
                    f"weekday {weekday}: shift ({start}, {end}) overlaps or precedes "
                    f"{shifts[-1]}; shifts must be sorted and not overlap"
                )
            if shifts and start == shifts[-1][1]:
                shifts[-1] = (shifts[-1][0], end)  # touching shifts are one
            else:
                shifts.append((start, end))
        week.append(tuple(shifts))
    return tuple(week)


class BusinessCalendar:
    """Weekly business hours with holidays in one IANA zone; see the module docstring.

    Queries update the calendar's caches: use one calendar from one thread (or event loop)."""

    __slots__ = (
        "_always",
        "_cache",
        "_hi",
        "_holidays",
        "_lo",
        "_midnights",
        "_week",
        "_weeks",
        "_zone",
        "week_seconds",
    )

    def __init__(
        self,
        zone: str,
        hours: Mapping[int, Sequence[tuple[int, int]]],
        holidays: Iterable[date] = (),
    ) -> None:
        try:
            self._zone = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        self._week = _check_week(hours)
        self._holidays = frozenset(holidays)
        if any(isinstance(day, datetime) for day in self._holidays):
            raise ValueError("holidays are dates, not datetimes")
        self.week_seconds: int = sum(end - start for day in self._week for start, end in day)
        """Business seconds of a week with no holiday and no clock change."""
        self._always = not self._holidays and all(day == ((0, DAY_SECONDS),) for day in self._week)
        self._cache: OrderedDict[date, _Day] = OrderedDict()
        self._midnights: OrderedDict[date, float] = OrderedDict()
        self._weeks: OrderedDict[date, _Day] = OrderedDict()
        self._lo = self._day(_FIRST_DAY).begin
        self._hi = self._day(_LAST_DAY).begin

    @classmethod
    def always(cls) -> BusinessCalendar:
        """The 24/7 calendar: ``elapsed = end - start``, ``add = start + seconds``."""
        return cls("UTC", {weekday: [(0, DAY_SECONDS)] for weekday in range(7)})

    @property
    def zone(self) -> str:
        return self._zone.key

    @property
    def is_always(self) -> bool:
        """Every instant is business time (every day 00:00-24:00, no holiday), in any zone."""
        return self._always

    @property
    def hours(self) -> tuple[tuple[Shift, ...], ...]:
        """The weekly hours, Monday first, touching shifts merged."""
        return self._week

    @property
    def holidays(self) -> frozenset[date]:
        return self._holidays

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return (self.zone, self._week, self._holidays) == (other.zone, other._week, other._holidays)

    def __hash__(self) -> int:
        return hash((self.zone, self._week, self._holidays))

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.zone!r}, week_seconds={self.week_seconds}, "
            f"holidays={len(self._holidays)})"
        )

    # -- queries ---------------------------------------------------------------------------

    def elapsed(self, start: float, end: float) -> float:
        """Business seconds in ``[start, end)``; ``0.0`` when ``end <= start``."""
        _check_instant(start)
        _check_instant(end)
        if end <= start:
            return 0.0
        if self._always:
            return end - start
        start, end = self._clamp(start), self._clamp(end)
        total = 0.0
        first = current = self._date_of(start)
        while current < _LAST_DAY:
            # A week is worth a look only once the walk is past start's day and end is days away.
            week = None
            if current > first and end - self._midnight(current) > 6 * DAY_SECONDS:
                week = self._whole_week(current)
            if week is not None and week.end <= end:
                total += week.total
                current += _ONE_WEEK
                continue
            day = self._day(current)
            if day.begin >= end:
                break
            if start <= day.begin and day.end <= end:
                total += day.total
            else:
                for a, b in day.intervals:
                    overlap = min(b, end) - max(a, start)
                    if overlap > 0:
                        total += overlap
            current += _ONE_DAY
        return total

    def add(self, start: float, seconds: float) -> float:
        """The first instant at which the business time elapsed since ``start`` reaches
        ``seconds``: ``start`` itself for ``0``; ``math.inf`` when it is never reached (no
        business hours at all, or more than :data:`MAX_WALK_DAYS` local days away).
        ``seconds`` must not be negative or NaN (``ValueError``)."""
        _check_instant(start)
        _check_amount(seconds)
        if seconds == 0:
            return start
        if self._always:
            return start + seconds
        if self.week_seconds == 0 or math.isinf(seconds) or start >= self._hi:
            return math.inf
        return self._walk(self._clamp(start), seconds)

    def _walk(self, start: float, remaining: float) -> float:
        """``add`` for a finite ``start`` in range and ``remaining > 0``."""
        first = current = self._date_of(start)
        walked = 0
        while walked < MAX_WALK_DAYS:
            week = None
            if current > first and remaining > self.week_seconds / 2:
                week = self._whole_week(current)
            if week is not None and remaining > week.total and walked + 7 <= MAX_WALK_DAYS:
                remaining -= week.total
                current += _ONE_WEEK
                walked += 7
                continue
            if current >= _LAST_DAY:
                return math.inf
            day = self._day(current)
            if start <= day.begin and remaining > day.total:
                remaining -= day.total
            else:
                deadline, remaining = _land(day, start, remaining)
                if deadline is not None:
                    return deadline
            current += _ONE_DAY
            walked += 1
        return math.inf

    def back(self, start: float, seconds: float) -> float:
        """The latest instant ``x <= start`` with ``elapsed(x, start) >= seconds`` (``add``
        backwards: the start of the business time that ends at ``start``). ``start`` itself for
        ``0``; ``-math.inf`` when there is not that much business time in the
        :data:`MAX_WALK_DAYS` local days before. ``seconds`` must not be negative or NaN."""
        _check_instant(start)
        _check_amount(seconds)
        if seconds == 0:
            return start
        if self._always:
            return start - seconds
        if self.week_seconds == 0 or math.isinf(seconds) or start <= self._lo:
            return -math.inf
        return self._walk_back(self._clamp(start), seconds)

    def _walk_back(self, start: float, remaining: float) -> float:
        first = current = self._date_of(start)
        walked = 0
        while walked < MAX_WALK_DAYS and current >= _FIRST_DAY:
            week = None
            if current < first and current.weekday() == 6 and remaining > self.week_seconds / 2:
                week = self._whole_week(current - timedelta(days=6))
            if week is not None and remaining > week.total and walked + 7 <= MAX_WALK_DAYS:
                remaining -= week.total
                current -= _ONE_WEEK
                walked += 7
                continue
            day = self._day(current)
            if day.end <= start and remaining > day.total:
                remaining -= day.total
            else:
                for a, b in reversed(day.intervals):
                    if a >= start:
                        continue
                    stop = min(b, start)
                    if remaining <= stop - a:
                        return stop - remaining
                    remaining -= stop - a
            current -= _ONE_DAY
            walked += 1
        return -math.inf

    def is_business(self, t: float) -> bool:
        """``t`` lies in a business interval (shift start included, shift end excluded)."""
        _check_instant(t)
        if self._always:
            return True
        if not self._lo <= t < self._hi:
            return False
        day = self._day(self._date_of(t))
        return any(a <= t < b for a, b in day.intervals)

    # -- conversion ------------------------------------------------------------------------

    def _clamp(self, t: float) -> float:
        return min(max(t, self._lo), self._hi)

    def _date_of(self, t: float) -> date:
        """The local date that owns ``t`` (``_lo <= t <= _hi``)."""
        current = datetime.fromtimestamp(t, self._zone).date()
        current = min(max(current, _FIRST_DAY), _LAST_DAY)
        # The wall date and the owning date differ only around a clock change at midnight.
        while current > _FIRST_DAY and t < self._day(current).begin:
            current -= _ONE_DAY
        while current < _LAST_DAY and t >= self._day(current).end:
            current += _ONE_DAY
        return current

    def _instant(self, day: date, seconds: int) -> float:
        """Epoch seconds of local ``day`` + ``seconds`` (wall clock, ``fold=0``)."""
        if seconds == DAY_SECONDS:
            return self._midnight(day + _ONE_DAY)
        hour, rest = divmod(seconds, 3600)
        minute, second = divmod(rest, 60)
        wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=self._zone)
        return wall.timestamp()

    def _midnight(self, day: date) -> float:
        cached = self._midnights.get(day)
        if cached is None:
            cached = datetime(day.year, day.month, day.day, tzinfo=self._zone).timestamp()
            self._midnights[day] = cached
            if len(self._midnights) > CACHE_DAYS:
                self._midnights.popitem(last=False)
        return cached

    def _whole_week(self, monday: date) -> _Day | None:
        """Monday ``monday``'s whole week as one span (no intervals), or ``None`` when ``monday``
        is not a Monday or its week reaches out of the supported range."""
        if monday.weekday() != 0 or not _FIRST_DAY <= monday <= _LAST_MONDAY:
            return None
        cached = self._weeks.get(monday)
        if cached is not None:
            self._weeks.move_to_end(monday)
            return cached
        days = [self._day(monday + timedelta(days=i)) for i in range(7)]
        computed = _Day(days[0].begin, days[6].end, (), sum(day.total for day in days))
        self._weeks[monday] = computed
        if len(self._weeks) > CACHE_WEEKS:
            self._weeks.popitem(last=False)
        return computed

    def _day(self, day: date) -> _Day:
        cached = self._cache.get(day)
        if cached is not None:
            self._cache.move_to_end(day)
            return cached
        computed = self._convert(day)
        self._cache[day] = computed
        if len(self._cache) > CACHE_DAYS:
            self._cache.popitem(last=False)
        return computed

    def _convert(self, day: date) -> _Day:
        # A day owns [midnight, next midnight); the min() keeps the days in order when the zone
        # skips a whole date (its midnight converts to after the next one's).
        midnights = [self._midnight(day + timedelta(days=i)) for i in range(3)]
        begin = min(midnights[0], midnights[1])
        end = min(midnights[1], midnights[2])
        if day in self._holidays or begin >= end:
            return _Day(begin, max(begin, end), (), 0.0)
        merged: list[tuple[float, float]] = []
        converted = sorted(
            (max(self._instant(day, s), begin), min(self._instant(day, e), end))
            for s, e in self._week[day.weekday()]
        )
        for a, b in converted:
            if b <= a:
                continue  # a shift that starts in a skipped hour and ends within its length
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return _Day(begin, end, tuple(merged), sum(b - a for a, b in merged))


def _land(day: _Day, start: float, remaining: float) -> tuple[float | None, float]:
    """Walk ``day``'s intervals from ``start``: the instant where ``remaining`` business seconds
    run out, or ``None`` and what is left after the day."""
    for a, b in day.intervals:
        if b <= start:
            continue
        begin = max(a, start)
        length = b - begin
        if remaining <= length:
            return begin + remaining, 0.0
        remaining -= length
    return None, remaining


def _check_amount(seconds: float) -> None:
    """A business-time amount must be a number ``>= 0`` (``ValueError`` otherwise)."""
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"business seconds must be >= 0, got {seconds}")


def _check_instant(t: float) -> None:
    if math.isnan(t):
        raise ValueError("an instant must not be NaN")
