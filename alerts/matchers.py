"""Alertmanager's label matchers as strings: ``name="value"``, ``name!="value"``, ``name=~"re"``,
``name!~"re"`` (the value may also be written without quotes). Regexes are anchored (full match),
as in Alertmanager; a missing label counts as the empty string.

Used by ``alerts.inhibit_rules`` (``source_matchers`` / ``target_matchers``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
MAX_MATCHER = 1000
"""Characters of one matcher string at most."""


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.pattern is not None:
            found = self.pattern.fullmatch(actual) is not None
        else:
            found = actual == self.value
        return found == (self.op in ("=", "=~"))


def _value(raw: str) -> str:
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValueError("the quoted value is not a closed, valid string") from None
        if not isinstance(value, str):
            raise ValueError("the quoted value is not a string")
        return value
    if any(c in raw for c in '"{},'):
        raise ValueError("quote a value holding quotes, braces or commas")
    return raw


def parse_matcher(text: str) -> LabelMatcher:
    """One matcher; ValueError says what is wrong (the caller names the key)."""
    if len(text) > MAX_MATCHER:
        raise ValueError(f"longer than {MAX_MATCHER} characters")
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(
            f'{text[:80]!r} is not a matcher like alertname="X", severity!="info", '
            'channel=~"voice|chat" or queue!~"test.*"'
        )
    name, op, raw = found.groups()
    value = _value(raw)
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression {value[:80]!r}: {exc}") from None
    return LabelMatcher(name, op, value, pattern)
