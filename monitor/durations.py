"""Durations as ops engineers write them: seconds (``20``, ``90.5``) or Prometheus' syntax.

Prometheus' syntax is one or more ``<integer><unit>`` parts, units ``y w d h m s ms`` (a year is
365 days, a week 7 days), largest unit first, each unit at most once: ``30s``, ``5m``,
``1h30m``, ``1d2h3m4s5ms``, ``1w``, ``1y``. A plain number, or a string of one (``"90.5"``), is
seconds. A leading ``-`` is refused as negative, more than 100 years as too long; anything else
is refused as not a duration.

Kept in one place so config, CLI and window labels agree on the spelling; ``format_duration``
writes seconds back for people (alert texts, detector sentences).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Annotated

from pydantic import BeforeValidator

TICK_TOLERANCE = 1e-6
"""Seconds within which two event times are one instant. Tick instants ``k * 0.1`` are rounded
to the nearest double, about 2.4e-7 s apart at today's epoch, so a 1.3 s ``for`` measured
between two of them can come out as 1.2999999 s."""


def lasted(now: float, since: float, span: float) -> bool:
    """Whether ``span`` seconds have passed from ``since`` to ``now`` (within the tolerance)."""
    return now - since >= span - TICK_TOLERANCE


def outlasted(now: float, since: float, span: float) -> bool:
    """Whether strictly more than ``span`` seconds have passed (beyond the tolerance)."""
    return now - since > span + TICK_TOLERANCE


_UNITS = (
    ("y", 365 * 86400.0),
    ("w", 7 * 86400.0),
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)
# Prometheus' own pattern (model.ParseDuration): each unit optional, in this order, at most once.
_PROMETHEUS = re.compile("".join(rf"(?:(?P<{unit}>\d+){unit})?" for unit, _ in _UNITS), re.ASCII)
_SECONDS = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
MAX_SECONDS = 100 * 365 * 86400.0
"""The longest duration accepted: 100 years. Every deadline, retention and horizon is added to
event times (years 1970-8999) and kept to the microsecond; a far longer one (``1e308``) would
make those sums infinite."""
_HINT = (
    "use seconds (e.g. 90) or Prometheus' duration syntax (e.g. '30s', '5m', '1h30m', "
    "'1d2h3m4s5ms'; units y, w, d, h, m, s, ms, largest first, each once)"
)


def _parse_text(text: str) -> float | None:
    """Seconds of an unsigned duration string, or ``None`` if it is not one."""
    if _SECONDS.fullmatch(text):
        return float(text)
    match = _PROMETHEUS.fullmatch(text)
    if not text or match is None:
        return None
    counts = match.groupdict()
    return sum(float(counts[unit] or 0) * factor for unit, factor in _UNITS)


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string; refuses negatives, non-finite values, more
    than :data:`MAX_SECONDS` and anything else with a message that quotes the value as
    written."""
    if isinstance(value, bool):
        raise ValueError(f"a duration is a number of seconds or a string; {_HINT}")  # noqa: TRY004
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        sign, text = (-1.0, value[1:]) if value.startswith("-") else (1.0, value)
        parsed = _parse_text(text)
        if parsed is None:
            raise ValueError(f"{value!r} is not a duration; {_HINT}")
        seconds = sign * parsed
    else:
        raise ValueError(f"a duration is a number of seconds or a string; {_HINT}")  # noqa: TRY004
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"a duration must be a finite number of seconds (got {value})")
    if seconds < 0:
        raise ValueError(f"a duration must not be negative (got {value})")
    if seconds > MAX_SECONDS:
        raise ValueError(f"a duration must be at most 100y (got {value})")
    return seconds


def _duration(value: object) -> float:
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
"""A non-negative number of seconds, written as a number or a duration string."""


def format_duration(seconds: float) -> str:
    """Seconds as people read them: ``45s``, ``6m 10s``, ``6m``, ``1h 5m``, ``2d 3h``; the two
    largest units, rounded down; ``unbounded`` for +Inf, ``n/a`` for NaN."""
    if math.isnan(seconds):
        return "n/a"
    if math.isinf(seconds):
        return "unbounded" if seconds > 0 else "n/a"
    return _whole_seconds(max(0, int(seconds)))


@functools.lru_cache(maxsize=4096)
def _whole_seconds(total: int) -> str:
    """``format_duration`` of a whole number of seconds; the last 4,096 are kept (detector
    summaries format an oldest wait on every tick, and waits repeat)."""
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count or (parts and len(parts) < 2):
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    parts = [p for p in parts if not p.startswith("0")]
    return " ".join(parts) or "0s"
