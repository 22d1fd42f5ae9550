"""Alertmanager's label matchers as strings: ``name="value"``, ``name!="value"``, ``name=~"re"``,
``name!~"re"`` (the value may also be written without quotes). Regexes are anchored (full match),
as in Alertmanager; a missing label counts as the empty string.

Used by ``alerts.inhibit_rules`` (``source_matchers`` / ``target_matchers``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import re2

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
MAX_MATCHER = 1000
"""Characters of one matcher string at most."""


class Pattern(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


_RE2 = re2.Options()
_RE2.log_errors = False  # RE2 would write the refused pattern to stderr itself


@functools.lru_cache(maxsize=4096)
def compile_regex(value: str) -> Pattern:
    """``value`` as an RE2 pattern, the engine Alertmanager and Prometheus use: matching takes
    time linear in the text however the pattern is written (Python's backtracking ``re`` ran
    ``(\\w|\\w|\\w)*\\d`` on the event loop for minutes). ``ValueError`` when RE2 cannot read
    it (a backreference, a lookaround: RE2 has neither). Kept per pattern (bounded)."""
    try:
        pattern: Pattern = re2.compile(value, _RE2)
    except re2.error as exc:
        why = exc.args[0] if exc.args else ""
        raise ValueError(why.decode() if isinstance(why, bytes) else str(why)) from None
    return pattern


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    name: str
    op: str
    value: str
    pattern: Pattern | None

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
            pattern = compile_regex(value)
        except ValueError as exc:
            raise ValueError(f"bad regular expression {value[:80]!r}: {exc}") from None
    return LabelMatcher(name, op, value, pattern)
