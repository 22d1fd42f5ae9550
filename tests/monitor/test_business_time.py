"""Business time (monitor/business_time.py): deadlines and elapsed seconds computed by hand in
real zones, and a property test against a brute-force model that walks minute by minute.

Expected instants are written in UTC by hand (``_utc``), never converted by the code under test.
Dates used: Europe/Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC) and
falls back 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC); America/New_York springs forward
2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC) and falls back 2026-11-01 02:00 EDT -> 01:00 EST
(06:00 UTC). 2026-11-27 is a Friday.
"""

from __future__ import annotations

import itertools
import math
from calendar import timegm
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support_monitor.monitor.business_time import CACHE_DAYS, MAX_WALK_DAYS, BusinessCalendar

H = 3600
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
NINE_TO_SIX = {weekday: [(9 * H, 18 * H)] for weekday in range(5)}


def _utc(*fields: int) -> float:
    """Epoch seconds of a UTC date and time given as year, month, day[, hour, minute, second]."""
    return float(timegm((*fields, 0, 0, 0)[:6]))


def _one_day(weekday: int, shifts: list[tuple[int, int]], zone: str = BERLIN) -> BusinessCalendar:
    return BusinessCalendar(zone, {weekday: shifts})


# -- the examples ------------------------------------------------------------------


def test_friday_evening_plus_one_hour_is_monday_morning() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX)
    friday_1750 = _utc(2026, 11, 27, 16, 50)  # CET = UTC+1
    assert office.add(friday_1750, H) == _utc(2026, 11, 30, 8, 50)  # Monday 09:50 CET
    assert office.elapsed(friday_1750, _utc(2026, 11, 30, 8, 50)) == H


def test_a_monday_holiday_moves_the_deadline_to_tuesday() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX, frozenset({date(2026, 11, 30)}))
    friday_1750 = _utc(2026, 11, 27, 16, 50)
    assert office.add(friday_1750, H) == _utc(2026, 12, 1, 8, 50)  # Tuesday 09:50 CET
    assert office.elapsed(friday_1750, _utc(2026, 12, 1, 8, 50)) == H
    assert office.elapsed(_utc(2026, 11, 30, 0), _utc(2026, 12, 1, 0)) == 0


def test_split_shift_skips_the_lunch_break() -> None:
    office = BusinessCalendar(BERLIN, {0: [(9 * H, 12 * H), (13 * H, 17 * H)]})
    monday_1130 = _utc(2026, 11, 30, 10, 30)
    assert office.add(monday_1130, H) == _utc(2026, 11, 30, 12, 30)  # 13:30 CET
    assert office.elapsed(monday_1130, _utc(2026, 11, 30, 12, 30)) == H
    assert office.elapsed(_utc(2026, 11, 30, 0), _utc(2026, 12, 1, 0)) == 7 * H
    assert office.is_business(_utc(2026, 11, 30, 10, 59))
    assert not office.is_business(_utc(2026, 11, 30, 11, 0))  # 12:00 CET: the break
    assert not office.is_business(_utc(2026, 11, 30, 11, 59))
    assert office.is_business(_utc(2026, 11, 30, 12, 0))  # 13:00 CET: start included
    assert not office.is_business(_utc(2026, 11, 30, 16, 0))  # 17:00 CET: end excluded


def test_elapsed_over_a_weekend() -> None:
    office = BusinessCalendar(NEW_YORK, NINE_TO_SIX)
    friday_1700 = _utc(2026, 11, 27, 22)  # EST = UTC-5
    monday_1000 = _utc(2026, 11, 30, 15)
    assert office.elapsed(friday_1700, monday_1000) == 2 * H
    assert office.elapsed(_utc(2026, 11, 28, 12), _utc(2026, 11, 29, 23)) == 0  # Sat..Sun
    assert office.elapsed(monday_1000, friday_1700) == 0  # end before start


def test_back_is_add_in_reverse() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX, frozenset({date(2026, 11, 30)}))
    tuesday_0950 = _utc(2026, 12, 1, 8, 50)
    assert office.back(tuesday_0950, H) == _utc(2026, 11, 27, 16, 50)  # Friday 17:50 CET
    # Ending at a shift start: the latest x is the shift start of the business hour before it.
    tuesday_0900 = _utc(2026, 12, 1, 8)
    assert office.back(tuesday_0900, H) == _utc(2026, 11, 27, 16)  # Friday 17:00
    assert office.back(tuesday_0900, 0) == tuesday_0900
    # Back from Tuesday 2026-12-01 09:00 (Monday 30 is a holiday): the nine whole weeks from
    # Monday 2026-09-28 to Friday 2026-11-27 hold 9 * 45 h = 405 h (local hours: the change to
    # CET on 2026-10-25 is a Sunday), and 5 h more is Friday 2026-09-25 13:00 CEST.
    assert office.back(tuesday_0900, 410 * H) == _utc(2026, 9, 25, 11)
    assert office.elapsed(_utc(2026, 9, 25, 11), tuesday_0900) == 410 * H
    assert BusinessCalendar(BERLIN, {}).back(tuesday_0900, 1) == -math.inf
    assert BusinessCalendar.always().back(100.0, 40.0) == 60.0
    assert office.back(-1e15, 1) == -math.inf
    with pytest.raises(ValueError, match="must be >= 0"):
        office.back(tuesday_0900, -1)


def test_a_deadline_lands_on_the_end_of_a_shift_not_the_next_start() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX)
    friday_1700 = _utc(2026, 11, 27, 16)
    assert office.add(friday_1700, H) == _utc(2026, 11, 27, 17)  # Friday 18:00 CET
    assert office.add(friday_1700, H + 1) == _utc(2026, 11, 30, 8, 0, 1)  # Monday 09:00:01


def test_a_long_target_crosses_weeks_and_a_holiday() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX, frozenset({date(2026, 12, 25)}))
    monday_0900 = _utc(2026, 11, 30, 8)
    # 5 days of 9 h a week: 4 weeks = 180 h end Friday 2026-12-25 18:00, but that Friday is a
    # holiday, so the last 9 h are Monday 2026-12-28 09:00-18:00.
    assert office.add(monday_0900, 180 * H) == _utc(2026, 12, 28, 17)
    assert office.elapsed(monday_0900, _utc(2026, 12, 28, 17)) == 180 * H
    assert office.week_seconds == 45 * H


# -- DST ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day_start", "day_end", "hours"),
    [
        (BERLIN, _utc(2026, 3, 28, 23), _utc(2026, 3, 29, 22), 23),
        (BERLIN, _utc(2026, 10, 24, 22), _utc(2026, 10, 25, 23), 25),
        (NEW_YORK, _utc(2026, 3, 8, 5), _utc(2026, 3, 9, 4), 23),
        (NEW_YORK, _utc(2026, 11, 1, 4), _utc(2026, 11, 2, 5), 25),
    ],
)
def test_dst_days_hold_23_and_25_hours(
    zone: str, day_start: float, day_end: float, hours: int
) -> None:
    around_the_clock = {weekday: [(0, 86400)] for weekday in range(7)}
    always_in_zone = BusinessCalendar(zone, around_the_clock)
    assert always_in_zone.is_always  # every day 00:00-24:00: the 24/7 fast path
    # The same hours with a holiday far away take the day-by-day path.
    walked = BusinessCalendar(zone, around_the_clock, frozenset({date(2030, 1, 1)}))
    assert not walked.is_always
    # Only that Sunday's 00:00-24:00 (all four dates are Sundays).
    sunday_only = _one_day(6, [(0, 86400)], zone)
    for calendar in (always_in_zone, walked, sunday_only):
        assert calendar.elapsed(day_start, day_end) == hours * H
        assert calendar.elapsed(day_start - 12 * H, day_end + 12 * H) == (
            hours * H if calendar is sunday_only else (hours + 24) * H
        )
        assert calendar.add(day_start, hours * H) == day_end
    assert sunday_only.add(day_start - 12 * H, hours * H) == day_end
    assert sunday_only.add(day_start - 12 * H, hours * H + 1) == day_end + 6 * 24 * H + 1


@pytest.mark.parametrize(
    ("zone", "day", "shift", "starts", "ends"),
    [
        # 01:00-04:00 holds the real 2 h on a spring-forward day, 4 h on a fall-back day.
        (BERLIN, date(2026, 3, 29), (1 * H, 4 * H), _utc(2026, 3, 29, 0), _utc(2026, 3, 29, 2)),
        (BERLIN, date(2026, 10, 25), (1 * H, 4 * H), _utc(2026, 10, 24, 23), _utc(2026, 10, 25, 3)),
        # A boundary in the skipped hour is read with the offset before the change (fold=0):
        # 02:30 is 01:30 UTC = 03:30 CEST.
        (
            BERLIN,
            date(2026, 3, 29),
            (2 * H + 1800, 6 * H),
            _utc(2026, 3, 29, 1, 30),
            _utc(2026, 3, 29, 4),
        ),
        (
            BERLIN,
            date(2026, 3, 29),
            (0, 2 * H + 1800),
            _utc(2026, 3, 28, 23),
            _utc(2026, 3, 29, 1, 30),
        ),
        # A boundary in the repeated hour is its first occurrence (CEST): 02:30 = 00:30 UTC.
        (
            BERLIN,
            date(2026, 10, 25),
            (2 * H + 1800, 6 * H),
            _utc(2026, 10, 25, 0, 30),
            _utc(2026, 10, 25, 5),
        ),
        (
            BERLIN,
            date(2026, 10, 25),
            (0, 2 * H + 1800),
            _utc(2026, 10, 24, 22),
            _utc(2026, 10, 25, 0, 30),
        ),
        # New York: 02:30 in the gap is 07:30 UTC (EST) = 03:30 EDT; 01:30 repeated is EDT.
        (
            NEW_YORK,
            date(2026, 3, 8),
            (2 * H + 1800, 4 * H),
            _utc(2026, 3, 8, 7, 30),
            _utc(2026, 3, 8, 8),
        ),
        (
            NEW_YORK,
            date(2026, 11, 1),
            (1 * H + 1800, 3 * H),
            _utc(2026, 11, 1, 5, 30),
            _utc(2026, 11, 1, 8),
        ),
    ],
)
def test_shift_boundaries_on_dst_days(
    zone: str, day: date, shift: tuple[int, int], starts: float, ends: float
) -> None:
    calendar = _one_day(day.weekday(), [shift], zone)
    midnight_before = starts - 30 * H
    assert calendar.elapsed(midnight_before, ends + 30 * H) == ends - starts
    assert calendar.add(midnight_before, 1) == starts + 1
    assert calendar.add(midnight_before, ends - starts) == ends
    assert calendar.is_business(starts)
    assert not calendar.is_business(starts - 1)
    assert calendar.is_business(ends - 1)
    assert not calendar.is_business(ends)


def test_a_shift_inside_the_gap_that_ends_early_is_empty_and_overlaps_merge() -> None:
    # 02:30 (gap) -> 01:30 UTC; 03:15 CEST -> 01:15 UTC: the end is before the start.
    empty = _one_day(6, [(2 * H + 1800, 3 * H + 900)])
    assert empty.elapsed(_utc(2026, 3, 28), _utc(2026, 3, 30)) == 0
    assert empty.add(_utc(2026, 3, 28), 1) == _utc(2026, 4, 5, 0, 30, 1)  # next Sunday, CEST
    # 01:00-02:30 -> 00:00-01:30 UTC and 03:15-05:00 -> 01:15-03:00 UTC overlap by 15 minutes:
    # the union is 00:00-03:00 UTC, 3 h (not 3 h 15 m).
    merged = _one_day(6, [(1 * H, 2 * H + 1800), (3 * H + 900, 5 * H)])
    assert merged.elapsed(_utc(2026, 3, 28), _utc(2026, 3, 30)) == 3 * H
    assert merged.add(_utc(2026, 3, 28), 3 * H) == _utc(2026, 3, 29, 3)


def test_a_skipped_date_holds_no_time_and_days_still_tile() -> None:
    # Samoa skipped 2011-12-30 (UTC-10 -> UTC+14 at local midnight, 2011-12-30 10:00 UTC).
    every_day = {weekday: [(0, 86400)] for weekday in range(7)}
    apia = BusinessCalendar("Pacific/Apia", every_day, frozenset({date(2030, 1, 1)}))
    a, b = _utc(2011, 12, 28, 12), _utc(2012, 1, 2, 12)
    assert apia.elapsed(a, b) == b - a
    points = [a + k * 7 * H for k in range(18)] + [b]
    assert sum(apia.elapsed(x, y) for x, y in itertools.pairwise(points)) == b - a
    friday_only = BusinessCalendar("Pacific/Apia", {4: [(0, 86400)]})  # 2011-12-30 was a Friday
    assert friday_only.elapsed(a, b) == 0


# -- edges and bounds ----------------------------------------------------------------------


def test_zero_seconds_is_the_start_itself_and_an_empty_calendar_never_ends() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX)
    saturday = _utc(2026, 11, 28, 12)
    assert office.add(saturday, 0) == saturday
    closed = BusinessCalendar(BERLIN, {})
    assert closed.add(saturday, 1) == math.inf
    assert closed.elapsed(saturday, saturday + 30 * 86400) == 0
    assert not closed.is_business(saturday)
    assert office.add(saturday, math.inf) == math.inf
    with pytest.raises(ValueError, match="must be >= 0"):
        office.add(saturday, -1)
    with pytest.raises(ValueError, match="must be >= 0"):
        office.add(saturday, math.nan)
    with pytest.raises(ValueError, match="NaN"):
        office.elapsed(math.nan, saturday)


def test_always_is_wall_time() -> None:
    always = BusinessCalendar.always()
    assert always.is_always
    assert always.elapsed(10.5, 100.25) == 89.75
    assert always.elapsed(100.0, 10.0) == 0
    assert always.add(10.5, 89.75) == 100.25
    assert always.is_business(-5.0)
    assert always == BusinessCalendar("UTC", {d: [(0, 86400)] for d in range(7)})


def test_the_walk_is_bounded_and_far_deadlines_are_never() -> None:
    # One minute a week (Monday 09:00-09:01 UTC); 2029-01-01 is a Monday.
    minute_a_week = BusinessCalendar("UTC", {0: [(9 * H, 9 * H + 60)]})
    start = _utc(2029, 1, 1)
    # The 500th minute: 499 weeks later, 09:01.
    assert minute_a_week.add(start, 500 * 60) == start + 499 * 7 * 86400 + 9 * H + 60
    assert MAX_WALK_DAYS // 7 < 600
    assert minute_a_week.add(start, 600 * 60) == math.inf
    assert len(minute_a_week._cache) <= CACHE_DAYS
    # The ends of the supported range: no exception, no time beyond it.
    office = BusinessCalendar(NEW_YORK, NINE_TO_SIX)
    assert office.add(_utc(9999, 12, 20), 100 * H) == math.inf
    assert office.add(1e15, 1) == math.inf
    assert office.elapsed(-1e15, -1e15 + 86400) == 0
    assert office.elapsed(_utc(9999, 12, 28, 12), 1e15) == 0  # clamped: nothing from 12-28 on
    assert not office.is_business(1e15)


def test_calendars_compare_by_what_they_mean() -> None:
    a = BusinessCalendar(BERLIN, {0: [(9 * H, 12 * H), (12 * H, 18 * H)]})
    b = BusinessCalendar(BERLIN, {0: [(9 * H, 18 * H)], 1: []})
    assert a == b
    assert hash(a) == hash(b)
    assert a != BusinessCalendar(NEW_YORK, {0: [(9 * H, 18 * H)]})
    assert a != BusinessCalendar(BERLIN, {0: [(9 * H, 18 * H)]}, [date(2026, 1, 1)])


@pytest.mark.parametrize(
    ("zone", "hours", "message"),
    [
        ("Europe/Berln", {}, "unknown time zone 'Europe/Berln'"),
        (BERLIN, {7: [(0, 60)]}, "weekdays are 0"),
        (BERLIN, {0: [(60, 60)]}, "not 0 <= start < end"),
        (BERLIN, {0: [(0, 86401)]}, "not 0 <= start < end"),
        (BERLIN, {0: [(600, 900), (0, 300)]}, "sorted and not overlap"),
        (BERLIN, {0: [(0, 900), (600, 1200)]}, "sorted and not overlap"),
    ],
)
def test_bad_calendars_are_refused(
    zone: str, hours: dict[int, list[tuple[int, int]]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(zone, hours)


def test_the_day_cache_is_bounded() -> None:
    office = BusinessCalendar(BERLIN, NINE_TO_SIX)
    start = _utc(2026, 1, 1)
    assert office.elapsed(start, start + 3 * CACHE_DAYS * 86400) > 0
    assert len(office._cache) == CACHE_DAYS


# -- against a brute-force model -----------------------------------------------------------

# Shift boundaries on a 30-minute grid, none strictly inside 01:00-03:00, where the two zones
# skip or repeat local times: there "local time of each minute" (the model) and "instant of
# each boundary" (the code) are different rules, pinned by the hand-computed tests above.
_GRID = [m * 1800 for m in range(49) if not 2 < m < 6]
_AROUND = [
    date(2026, 3, 27),
    date(2026, 10, 23),
    date(2026, 3, 6),
    date(2026, 10, 30),
    date(2026, 7, 1),
    date(2026, 12, 24),
]


@st.composite
def _calendars(draw: st.DrawFn) -> tuple[str, dict[int, list[tuple[int, int]]]]:
    zone = draw(st.sampled_from([BERLIN, NEW_YORK]))
    hours: dict[int, list[tuple[int, int]]] = {}
    for weekday in range(7):
        points = sorted(draw(st.sets(st.sampled_from(_GRID), max_size=6)))
        pairs = list(zip(points[::2], points[1::2], strict=False))
        # Touching shifts are allowed here (the code merges them); keep them disjoint.
        hours[weekday] = [p for p in pairs if p[0] < p[1]]
    return zone, hours


def _model_minutes(
    zone: ZoneInfo,
    hours: dict[int, list[tuple[int, int]]],
    holidays: frozenset[date],
    start: float,
    count: int,
) -> list[bool]:
    """Whether each of ``count`` minutes from ``start`` is business time: the minute's local
    wall time (what a wall clock shows) is within a shift of its local date."""
    out = []
    for k in range(count):
        local = datetime.fromtimestamp(start + 60 * k, zone)
        day = local.date()
        second = local.hour * 3600 + local.minute * 60
        out.append(
            day not in holidays and any(s <= second < e for s, e in hours.get(day.weekday(), []))
        )
    return out


@settings(max_examples=120, deadline=None)
@given(
    cal=_calendars(),
    around=st.sampled_from(_AROUND),
    minutes=st.tuples(st.integers(0, 4 * 1440), st.integers(1, 3 * 1440)),
    holiday_offsets=st.sets(st.integers(-1, 8), max_size=3),
    fraction=st.floats(0, 1),
)
def test_elapsed_and_add_match_a_minute_by_minute_model(
    cal: tuple[str, dict[int, list[tuple[int, int]]]],
    around: date,
    minutes: tuple[int, int],
    holiday_offsets: set[int],
    fraction: float,
) -> None:
    zone_name, hours = cal
    offset_minutes, span_minutes = minutes
    holidays = frozenset(around + timedelta(days=k) for k in holiday_offsets)
    calendar = BusinessCalendar(zone_name, hours, holidays)
    zone = ZoneInfo(zone_name)
    start = datetime(around.year, around.month, around.day, tzinfo=UTC).timestamp()
    start += 60 * offset_minutes
    business = _model_minutes(zone, hours, holidays, start, span_minutes)
    end = start + 60 * span_minutes
    assert calendar.elapsed(start, end) == 60 * sum(business)
    middle = start + 60 * (span_minutes // 2)
    assert calendar.elapsed(start, middle) + calendar.elapsed(middle, end) == 60 * sum(business)
    for k in (0, span_minutes // 3, span_minutes - 1):
        assert calendar.is_business(start + 60 * k + 30) == business[k]
    # add(): the model's deadline is the end of the minute in which the target is reached.
    target = round(fraction * sum(business))
    if target == 0:
        assert calendar.add(start, 0) == start
        return
    seen = 0
    for k, in_business in enumerate(business):
        seen += in_business
        if seen == target:
            expected = start + 60 * (k + 1)
            break
    deadline = calendar.add(start, 60 * target)
    assert deadline == expected
    assert calendar.elapsed(start, deadline) == 60 * target
    assert calendar.elapsed(start, deadline - 1) == 60 * target - 1
    # back(): the start of the minute in which, walking back from end, the target is reached.
    seen = 0
    for k in range(span_minutes - 1, -1, -1):
        seen += business[k]
        if seen == target:
            assert calendar.back(end, 60 * target) == start + 60 * k
            break


# -- whole weeks at once -------------------------------------------------------------------


def test_whole_weeks_across_a_dst_change() -> None:
    # Sundays only, 00:00-24:00, Berlin: from Monday 2026-03-02 00:00 CET to Monday 2026-05-04
    # 00:00 CEST there are nine Sundays, 2026-03-29 of 23 h: 8 * 24 + 23 = 215 h.
    sundays = _one_day(6, [(0, 86400)])
    monday = _utc(2026, 3, 1, 23)
    assert sundays.elapsed(monday, _utc(2026, 5, 3, 22)) == 215 * H
    assert sundays.add(monday, 215 * H) == _utc(2026, 5, 3, 22)  # Sunday 24:00 CEST
    assert sundays.add(monday, 215 * H + 1) == _utc(2026, 5, 9, 22, 0, 1)
    assert len(sundays._weeks) > 0


def _elapsed_in_day_steps(calendar: BusinessCalendar, start: float, end: float) -> float:
    """``elapsed`` summed over one-day pieces: no piece can hold a whole week."""
    total, at = 0.0, start
    while at < end:
        step = min(at + 86400, end)
        total += calendar.elapsed(at, step)
        at = step
    return total


@settings(max_examples=40, deadline=None)
@given(
    cal=_calendars(),
    start_day=st.integers(0, 400),
    start_minute=st.integers(0, 1439),
    target_minutes=st.integers(1, 60 * 24 * 30),
    holiday_days=st.sets(st.integers(0, 500), max_size=20),
)
def test_whole_week_skips_agree_with_the_day_walk(
    cal: tuple[str, dict[int, list[tuple[int, int]]]],
    start_day: int,
    start_minute: int,
    target_minutes: int,
    holiday_days: set[int],
) -> None:
    zone_name, hours = cal
    first = date(2026, 1, 1)
    holidays = frozenset(first + timedelta(days=k) for k in holiday_days)
    calendar = BusinessCalendar(zone_name, hours, holidays)
    start = _utc(2026, 1, 1) + 86400 * start_day + 60 * start_minute
    deadline = calendar.add(start, 60 * target_minutes)
    if deadline == math.inf:  # not within the walk's bound: there is not that much time
        assert calendar.elapsed(start, start + (MAX_WALK_DAYS - 2) * 86400) < 60 * target_minutes
        return
    assert deadline < start + MAX_WALK_DAYS * 86400
    assert _elapsed_in_day_steps(calendar, start, deadline) == 60 * target_minutes
    assert _elapsed_in_day_steps(calendar, start, deadline - 1) == 60 * target_minutes - 1
    assert calendar.elapsed(start, deadline) == 60 * target_minutes
    # Back from the deadline by the same amount: the first business instant at or after start.
    begin = calendar.back(deadline, 60 * target_minutes)
    assert begin >= start
    assert calendar.elapsed(start, begin) == 0
    assert begin == start or calendar.is_business(begin)
    assert _elapsed_in_day_steps(calendar, begin, deadline) == 60 * target_minutes
