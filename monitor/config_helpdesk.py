"""Settings of help-desk SLA clocks: business calendars, clock targets and pauses
(``docs/business-hours.md``).

Every model is frozen and refuses unknown keys. A check raises ``ValueError`` inside the
validator of the field it is about, so the config's error formatter names the full key
(``calendars.office.hours.mon: ...``). This module imports only pydantic, the standard library
and the project's bottom layer.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from support_monitor.monitor.business_time import DAY_SECONDS, BusinessCalendar
from support_monitor.monitor.durations import Duration

__all__ = [
    "CLOCKS",
    "MAX_HOLIDAYS",
    "MAX_SHIFTS_PER_DAY",
    "WEEKDAYS",
    "CalendarSettings",
    "ClockTargets",
    "PauseSettings",
    "PauseStatus",
    "WeeklyHours",
    "parse_range",
]

MAX_SHIFTS_PER_DAY = 24
"""At most this many ranges on one weekday."""
MAX_HOLIDAYS = 1000
"""At most this many holiday dates in one calendar."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The keys of ``hours``, Monday first (``datetime.date.weekday()`` order)."""

_RANGE = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RANGE_HINT = "write HH:MM-HH:MM, e.g. '09:00-17:30' (24:00 only as an end)"


_NOT_IANA = ("localtime", "posixrules")
"""Files in the zone directory that are no IANA zone: ``localtime`` is the host's own zone (it
would follow the machine's setting), ``posixrules`` the POSIX TZ default rules."""


def known_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows, else a ``ValueError``. The zone
    directory's other names (``localtime``, the ``posix/`` and ``right/`` copies, the latter with
    leap seconds) are refused."""
    unknown = ValueError(
        f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or "
        "'America/New_York'"
    )
    if name in _NOT_IANA or name.startswith(("posix/", "right/")):
        raise unknown
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unknown from None
    return name


ZoneName = Annotated[str, AfterValidator(known_zone)]
"""A config value naming an IANA time zone."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _time_of_day(hours: str, minutes: str, text: str, *, end: bool) -> int:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        if not end:
            raise ValueError(f"{text!r} starts at 24:00; a range starts at 00:00 .. 23:59")
        return DAY_SECONDS
    if h > 23 or m > 59:
        raise ValueError(f"{text!r} is not a time range; {_RANGE_HINT}")
    return h * 3600 + m * 60


def parse_range(text: str) -> tuple[int, int]:
    """``"09:00-17:30"`` as ``(32400, 63000)``, seconds since local midnight; ``ValueError``
    (quoting ``text``) unless it is ``HH:MM-HH:MM`` with start before end."""
    match = _RANGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time range; {_RANGE_HINT}")
    start = _time_of_day(match[1], match[2], text, end=False)
    end = _time_of_day(match[3], match[4], text, end=True)
    if start >= end:
        raise ValueError(
            f"{text!r} does not start before it ends; a shift over midnight is two ranges, "
            "e.g. fri '22:00-24:00' and sat '00:00-06:00'"
        )
    return start, end


def _range(text: str) -> str:
    parse_range(text)
    return text


TimeRange = Annotated[str, AfterValidator(_range)]
"""One shift as written: ``HH:MM-HH:MM``."""
DayHours = Annotated[tuple[TimeRange, ...], Field(max_length=MAX_SHIFTS_PER_DAY)]


def _holiday(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # YAML reads an unquoted 2026-12-25 as a date
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    shown = value if isinstance(value, str) else str(value)
    raise ValueError(f"{shown!r} is not a date; write YYYY-MM-DD, e.g. '2026-12-25'")


Holiday = Annotated[date, BeforeValidator(_holiday)]


class WeeklyHours(_Model):
    """Business hours per weekday; a day left out, or empty, has none."""

    mon: DayHours = ()
    tue: DayHours = ()
    wed: DayHours = ()
    thu: DayHours = ()
    fri: DayHours = ()
    sat: DayHours = ()
    sun: DayHours = ()

    @field_validator(*WEEKDAYS)
    @classmethod
    def _disjoint(cls, ranges: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        day = info.field_name
        ordered = sorted(ranges, key=parse_range)
        for before, after in itertools.pairwise(ordered):
            before_end, after_start = parse_range(before)[1], parse_range(after)[0]
            if after_start < before_end:
                raise ValueError(f"ranges {before!r} and {after!r} on {day} overlap")
            if after_start == before_end:
                raise ValueError(
                    f"ranges {before!r} and {after!r} on {day} touch; write them as one "
                    f"range '{before[:5]}-{after[6:]}'"
                )
        return ranges

    def week(self) -> dict[int, list[tuple[int, int]]]:
        """Weekday (0 = Monday) -> sorted ``(start, end)`` seconds since local midnight."""
        return {
            weekday: sorted(parse_range(text) for text in getattr(self, name))
            for weekday, name in enumerate(WEEKDAYS)
        }


class CalendarSettings(_Model):
    """A business calendar: weekly hours with split shifts and holiday dates, in an IANA zone."""

    timezone: ZoneName
    """An IANA zone name (``Europe/Berlin``); local times and dates are read in it."""
    hours: WeeklyHours
    """Required; ``{}`` is a calendar with no business time (its clocks never run)."""
    holidays: Annotated[tuple[Holiday, ...], Field(max_length=MAX_HOLIDAYS)] = ()
    """Local dates with no business time at all."""

    @field_validator("holidays")
    @classmethod
    def _once_each(cls, days: tuple[date, ...]) -> tuple[date, ...]:
        seen: set[date] = set()
        for day in days:
            if day in seen:
                raise ValueError(f"{day.isoformat()} is listed twice")
            seen.add(day)
        return days

    def build(self) -> BusinessCalendar:
        """The calendar these settings describe (a new object each call: keep it)."""
        return BusinessCalendar(self.timezone, self.hours.week(), frozenset(self.holidays))


def _positive(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise ValueError("must be greater than 0")
    return value


Target = Annotated[Duration | None, AfterValidator(_positive)]

CLOCKS = ("first_response", "next_reply", "resolution")
"""The help-desk SLA clocks."""


class ClockTargets(_Model):
    """Business-time targets of the three clocks; a clock left out (``None``) does not run."""

    first_response: Target = None
    next_reply: Target = None
    resolution: Target = None


PauseStatus = Literal["pending", "on_hold"]
"""Ticket statuses that can pause a clock (``open`` resumes them)."""


def _distinct(statuses: tuple[str, ...]) -> tuple[str, ...]:
    for i, status in enumerate(statuses):
        if status in statuses[:i]:
            raise ValueError(f"{status!r} is listed twice")
    return statuses


PauseList = Annotated[tuple[PauseStatus, ...], AfterValidator(_distinct)]


class PauseSettings(_Model):
    """Which statuses pause which clock; by default ``pending`` pauses ``resolution`` only."""

    first_response: PauseList = ()
    next_reply: PauseList = ()
    resolution: PauseList = ("pending",)

    def paused_clocks(self, status: str) -> tuple[str, ...]:
        """The clocks that ``status`` pauses, in :data:`CLOCKS` order."""
        return tuple(clock for clock in CLOCKS if status in getattr(self, clock))
