"""Durations as ops engineers write them: ``20``, ``90.5``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``.

Kept in one place so config, CLI and window labels agree on the spelling.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from a number or a ``<number><unit>`` string; refuses negatives and garbage."""
    if isinstance(value, bool):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
            "a duration is a number of seconds or a string like '30s', '5m', '1h'"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration; use seconds or a string like '30s', '5m', '1h'"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
            "a duration is a number of seconds or a string like '30s', '5m', '1h'"
        )
    if seconds < 0 or seconds != seconds:  # noqa: PLR0124 - NaN check
        raise ValueError(f"a duration must not be negative (got {value!r})")
    return seconds


def _duration(value: object) -> float:
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
"""A non-negative number of seconds, written as a number or a string with a unit."""
