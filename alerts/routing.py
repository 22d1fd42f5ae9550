"""Which receivers hear about an alert, grouped how, and whether a mute window holds it now.

Routes are tried in order; a matching route adds its receiver and stops the walk unless it has
``continue: true`` (Alertmanager's semantics, flat). No match: nobody is notified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from support_monitor.alerts.config import WEEKDAYS, MuteRange, NotifierSettings, Route
from support_monitor.alerts.matchers import compile_regex
from support_monitor.alerts.state import Labels


@dataclass(frozen=True, slots=True)
class Target:
    receiver: str
    group_by: tuple[str, ...]
    mute: tuple[str, ...]
    group_wait: float = 0.0
    group_interval: float = 0.0


def _matches(route: Route, labels: dict[str, str]) -> bool:
    for key, value in route.match.items():
        if labels.get(key, "") != value:
            return False
    for key, pattern in route.match_re.items():
        if compile_regex(pattern).fullmatch(labels.get(key, "")) is None:
            return False
    return True


class Router:
    def __init__(self, settings: NotifierSettings) -> None:
        self._routes = settings.routes
        self._windows = settings.mute_windows
        self._cache: dict[Labels, tuple[Target, ...]] = {}

    def targets(self, labels: Labels) -> tuple[Target, ...]:
        """Receivers for a label set (first route per receiver wins; cached, labels are bounded)."""
        cached = self._cache.get(labels)
        if cached is not None:
            return cached
        as_dict = dict(labels)
        found: dict[str, Target] = {}
        for route in self._routes:
            if not _matches(route, as_dict):
                continue
            found.setdefault(
                route.receiver,
                Target(
                    route.receiver,
                    route.group_by,
                    route.mute,
                    route.group_wait,
                    route.group_interval,
                ),
            )
            if not route.continue_:
                break
        result = tuple(found.values())
        self._cache[labels] = result
        return result

    def muted(self, target: Target, now: float) -> bool:
        return any(in_range(r, now) for name in target.mute for r in self._windows.get(name, ()))


def _day_matches(r: MuteRange, day: date) -> bool:
    if r.weekdays and WEEKDAYS[day.weekday()] not in r.weekdays:
        return False
    return not r.dates or day.isoformat() in r.dates


def in_range(r: MuteRange, now: float) -> bool:
    """True when ``now`` falls in the range; an overnight range belongs to the day it starts."""
    local = datetime.fromtimestamp(now, ZoneInfo(r.timezone))
    clock = local.timetz().replace(tzinfo=None)
    today = local.date()
    if r.start == r.end:
        return _day_matches(r, today)
    if r.start < r.end:
        return r.start <= clock < r.end and _day_matches(r, today)
    if clock >= r.start:
        return _day_matches(r, today)
    return clock < r.end and _day_matches(r, today - timedelta(days=1))
