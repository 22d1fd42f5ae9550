"""A tiny, safe annotation template language: ``{name}`` or ``{name:spec}``, ``{{``/``}}`` escapes.

``{name:dur}`` writes a number of seconds as a duration people read: ``45s``, ``6m 10s``,
``1h 5m``, ``2d 3h`` (``unbounded`` for +Inf), a fraction of a second rounded up (to the
millisecond first), so a wait just past a whole-second threshold never reads as the threshold.
No attribute access, indexing or evaluation: a name is looked up in a flat mapping; a format
spec (``.1f``, ``.0%``) applies only to numbers. Unknown names render as ``<no value>`` (like
Prometheus' Go templates), so a rule for one detector can't crash on another's labels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from support_monitor.monitor.durations import format_duration

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?::([0-9.,+\- %a-zA-Z]{1,12}))?\}|[{}]")
_SPEC = re.compile(r"^(?:dur|[+\- ]?[0-9]{0,2}(?:[.,][0-9]{1,2})?[eEfFgG%d]?)$")
"""A number format with a width and a precision of at most two digits each: a text is short
(a spec such as ``9999999`` would pad every rendering to megabytes)."""
NO_VALUE = "<no value>"


def check_template(text: str) -> None:
    """Raise ValueError if ``text`` has a stray brace or a bad format spec."""
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{", "}"):
            raise ValueError(f"stray {token!r} at {match.start()}; write {token * 2} for a brace")
        spec = match.group(2)
        if spec is not None and not _SPEC.match(spec):
            raise ValueError(
                f"bad format spec {spec!r} for {match.group(1)} (a number format such as "
                "'.1f', '.0%' or '8.2f', width and precision up to 99, or 'dur')"
            )


def _format(value: str | float, spec: str | None) -> str:
    if isinstance(value, str):
        return value
    if spec == "dur":
        return format_duration(math.ceil(round(value, 3)) if math.isfinite(value) else value)
    if math.isnan(value):
        return "n/a"
    if spec:
        try:
            return format(value, spec)
        except ValueError:
            return repr(value)
    return f"{value:g}"


def render(text: str, data: Mapping[str, str | float]) -> str:
    """Expand ``text`` with ``data``; never raises for a template that passed ``check_template``."""
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
        elif match.group(1) is None:
            out.append(token)
        else:
            value = data.get(match.group(1))
            out.append(NO_VALUE if value is None else _format(value, match.group(2)))
    out.append(text[pos:])
    return "".join(out)
