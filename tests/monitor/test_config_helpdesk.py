"""Help-desk settings (monitor/config_helpdesk.py): the YAML shape, and each error named by its
full key the way ``check-config`` prints it (``<key>: <problem>``)."""

from __future__ import annotations

from calendar import timegm
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from support_monitor.monitor import config_paths
from support_monitor.monitor.config_helpdesk import (
    MAX_HOLIDAYS,
    CalendarSettings,
    ClockTargets,
    PauseSettings,
    parse_range,
)

H = 3600

EXAMPLE = """
calendars:
  office:
    timezone: Europe/Berlin
    hours:
      mon: ["09:00-12:30", "13:30-18:00"]
      tue: ["09:00-18:00"]
    holidays: ["2026-12-25", "2026-12-26"]
"""


class Wrapper(BaseModel):
    """Stands in for the settings root: the keys the lead engineer will use."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    calendars: dict[str, CalendarSettings] = {}
    targets: ClockTargets = ClockTargets()
    pauses: PauseSettings = PauseSettings()


def _errors(data: object) -> list[str]:
    """Each error as ``monitor/config.py`` prints it: the readable key, then the problem."""
    with pytest.raises(ValidationError) as caught:
        Wrapper.model_validate(data)
    lines = []
    for err in caught.value.errors(include_url=False):
        key, annotation = config_paths.readable_key(Wrapper, err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error":
            key, msg = config_paths.join_message(key, annotation, msg)
        lines.append(f"{key}: {msg}")
    return lines


def _calendar(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"timezone": "Europe/Berlin", "hours": {}}
    return {"calendars": {"office": base | fields}}


def _utc(*fields: int) -> float:
    """Epoch seconds of a UTC date and time given as year, month, day[, hour, minute, second]."""
    return float(timegm((*fields, 0, 0, 0)[:6]))


def test_the_documented_example_builds_the_calendar_it_says() -> None:
    settings = Wrapper.model_validate(yaml.safe_load(EXAMPLE))
    office = settings.calendars["office"]
    assert office.holidays == (date(2026, 12, 25), date(2026, 12, 26))
    calendar = office.build()
    assert calendar.zone == "Europe/Berlin"
    assert calendar.hours[0] == ((9 * H, 12 * H + 1800), (13 * H + 1800, 18 * H))
    assert calendar.hours[1] == ((9 * H, 18 * H),)
    assert calendar.hours[2:] == ((), (), (), (), ())
    assert calendar.week_seconds == (3 * H + 1800) + (4 * H + 1800) + 9 * H
    # Monday 2026-11-30 12:00 CET + 1 h: 30 min before lunch, 30 min after: 14:00 CET.
    assert calendar.add(_utc(2026, 11, 30, 11), H) == _utc(2026, 11, 30, 13)
    # Tuesday 2026-12-22 17:00 CET + 2 h: 1 h that day, then Monday 28 09:00-10:00 (the 25th
    # is a Friday holiday anyway, the 26th a Saturday; no hours Wed..Sun).
    assert calendar.add(_utc(2026, 12, 22, 16), 2 * H) == _utc(2026, 12, 28, 9)


def test_unquoted_yaml_dates_and_24_00_are_accepted() -> None:
    text = """
calendars:
  support:
    timezone: America/New_York
    hours: {fri: ["22:00-24:00"], sat: ["00:00-06:00"]}
    holidays: [2026-12-25]
"""
    support = Wrapper.model_validate(yaml.safe_load(text)).calendars["support"]
    assert support.holidays == (date(2026, 12, 25),)
    calendar = support.build()
    # Friday 2026-11-27 22:00 EST (03:00 UTC Sat) to Saturday 06:00 EST: one 8 h stretch.
    assert calendar.elapsed(_utc(2026, 11, 28, 3), _utc(2026, 11, 28, 11)) == 8 * H
    assert calendar.add(_utc(2026, 11, 28, 4), 7 * H) == _utc(2026, 11, 28, 11)


def test_parse_range() -> None:
    assert parse_range("09:00-17:30") == (9 * H, 17 * H + 1800)
    assert parse_range("00:00-24:00") == (0, 86400)
    assert parse_range("23:59-24:00") == (86340, 86400)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _calendar(timezone="Europe/Berln"),
            (
                "calendars.office.timezone: unknown time zone 'Europe/Berln'; use an IANA name "
                "such as 'Europe/Berlin' or 'America/New_York'"
            ),
        ),
        (
            _calendar(timezone="../etc/passwd"),
            (
                "calendars.office.timezone: unknown time zone '../etc/passwd'; use an IANA name "
                "such as 'Europe/Berlin' or 'America/New_York'"
            ),
        ),
        *(
            (
                # files of the zone directory that are no IANA zone: the host's own zone (it
                # followed the machine's setting) and the posix/ and right/ copies
                _calendar(timezone=zone),
                (
                    f"calendars.office.timezone: unknown time zone '{zone}'; use an IANA name "
                    "such as 'Europe/Berlin' or 'America/New_York'"
                ),
            )
            for zone in ("localtime", "posixrules", "posix/Europe/Berlin", "right/Europe/Berlin")
        ),
        (
            _calendar(hours={"mon": ["09:00-12:30", "12:00-18:00"]}),
            "calendars.office.hours.mon: ranges '09:00-12:30' and '12:00-18:00' on mon overlap",
        ),
        (
            _calendar(hours={"wed": ["13:00-18:00", "09:00-14:00"]}),
            "calendars.office.hours.wed: ranges '09:00-14:00' and '13:00-18:00' on wed overlap",
        ),
        (
            _calendar(hours={"sun": ["09:00-12:00", "12:00-18:00"]}),
            (
                "calendars.office.hours.sun: ranges '09:00-12:00' and '12:00-18:00' on sun touch; "
                "write them as one range '09:00-18:00'"
            ),
        ),
        (
            _calendar(hours={"tue": ["09:00-12:00", "9-17"]}),
            (
                "calendars.office.hours.tue[1]: '9-17' is not a time range; write HH:MM-HH:MM, "
                "e.g. '09:00-17:30' (24:00 only as an end)"
            ),
        ),
        (
            _calendar(hours={"tue": ["09:60-12:00"]}),
            (
                "calendars.office.hours.tue[0]: '09:60-12:00' is not a time range; write "
                "HH:MM-HH:MM, e.g. '09:00-17:30' (24:00 only as an end)"
            ),
        ),
        (
            _calendar(hours={"thu": ["24:00-24:00"]}),
            (
                "calendars.office.hours.thu[0]: '24:00-24:00' starts at 24:00; a range starts at "
                "00:00 .. 23:59"
            ),
        ),
        (
            _calendar(hours={"fri": ["22:00-06:00"]}),
            (
                "calendars.office.hours.fri[0]: '22:00-06:00' does not start before it ends; a "
                "shift over midnight is two ranges, e.g. fri '22:00-24:00' and sat '00:00-06:00'"
            ),
        ),
        (
            _calendar(hours={"mon": ["\u0660\u0669:00-12:00"]}),
            (
                "calendars.office.hours.mon[0]: '\u0660\u0669:00-12:00' is not a time range; "
                "write HH:MM-HH:MM, e.g. '09:00-17:30' (24:00 only as an end)"
            ),
        ),
        (
            _calendar(hours={"monday": ["09:00-17:00"]}),
            "calendars.office.hours.monday: unknown key",
        ),
        (
            _calendar(holidays=["2026-12-25", "2026-13-01"]),
            (
                "calendars.office.holidays[1]: '2026-13-01' is not a date; write YYYY-MM-DD, e.g. "
                "'2026-12-25'"
            ),
        ),
        (
            _calendar(holidays=["25.12.2026"]),
            (
                "calendars.office.holidays[0]: '25.12.2026' is not a date; write YYYY-MM-DD, e.g. "
                "'2026-12-25'"
            ),
        ),
        (
            _calendar(holidays=[datetime(2026, 12, 25, 8, 0)]),
            (
                "calendars.office.holidays[0]: '2026-12-25 08:00:00' is not a date; "
                "write YYYY-MM-DD, e.g. '2026-12-25'"
            ),
        ),
        (
            _calendar(holidays=["2026-12-25", date(2026, 12, 25)]),
            "calendars.office.holidays: 2026-12-25 is listed twice",
        ),
        ({"calendars": {"office": {"hours": {}}}}, "calendars.office.timezone: Field required"),
        (
            {"targets": {"first_response": 0}},
            "targets.first_response: must be greater than 0",
        ),
        (
            {"targets": {"next_reply": "-5m"}},
            "targets.next_reply: a duration must not be negative (got -5m)",
        ),
        ({"targets": {"resolution_seconds": "1d"}}, "targets.resolution_seconds: unknown key"),
        (
            {"pauses": {"resolution": ["pending", "open"]}},
            "pauses.resolution[1]: Input should be 'pending' or 'on_hold'",
        ),
        (
            {"pauses": {"next_reply": ["on_hold", "on_hold"]}},
            "pauses.next_reply: 'on_hold' is listed twice",
        ),
    ],
)
def test_errors_name_the_key(data: object, expected: str) -> None:
    assert _errors(data) == [expected]


def test_bounds_on_list_lengths() -> None:
    too_many = [
        date.fromordinal(date(2026, 1, 1).toordinal() + k).isoformat()
        for k in range(MAX_HOLIDAYS + 1)
    ]
    (line,) = _errors(_calendar(holidays=too_many))
    assert line.startswith("calendars.office.holidays: ")
    assert Wrapper.model_validate(_calendar(holidays=too_many[:MAX_HOLIDAYS]))
    shifts = [f"{h:02d}:00-{h:02d}:30" for h in range(24)]
    assert Wrapper.model_validate(_calendar(hours={"mon": shifts}))
    (line,) = _errors(_calendar(hours={"mon": [*shifts, "23:40-23:50"]}))
    assert line.startswith("calendars.office.hours.mon: ")


def test_targets_and_pauses_defaults() -> None:
    targets = Wrapper.model_validate(
        {"targets": {"first_response": "1h", "resolution": "1d12h"}}
    ).targets
    assert (targets.first_response, targets.next_reply, targets.resolution) == (
        3600.0,
        None,
        129600.0,
    )
    pauses = PauseSettings()
    assert (pauses.first_response, pauses.next_reply, pauses.resolution) == ((), (), ("pending",))
    assert pauses.paused_clocks("pending") == ("resolution",)
    assert pauses.paused_clocks("on_hold") == ()
    assert pauses.paused_clocks("open") == ()
    custom = PauseSettings(first_response=("on_hold",), resolution=("pending", "on_hold"))
    assert custom.paused_clocks("on_hold") == ("first_response", "resolution")
    with pytest.raises(ValidationError):
        custom.resolution = ()  # type: ignore[misc]


def test_an_empty_calendar_is_allowed_and_never_runs() -> None:
    office = Wrapper.model_validate(_calendar(hours={"mon": []})).calendars["office"]
    calendar = office.build()
    assert calendar.week_seconds == 0
    assert calendar.add(_utc(2026, 11, 30), 1) == float("inf")


def test_the_example_in_the_docs_is_valid() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "business-hours.md").read_text(
        encoding="utf-8"
    )
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    office = Wrapper.model_validate(yaml.safe_load(block)).calendars["office"]
    calendar = office.build()
    assert calendar.hours[4] == ((22 * H, 24 * H),)
    assert calendar.hours[5] == ((0, 6 * H),)
    # Friday 2026-11-27 22:00 CET (21:00 UTC) + 8 h runs through midnight: Saturday 06:00 CET.
    assert calendar.add(_utc(2026, 11, 27, 21), 8 * H) == _utc(2026, 11, 28, 5)
