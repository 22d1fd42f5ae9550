"""Inhibition, as Alertmanager's ``inhibit_rules``: while a *source* alert fires, *target* alerts
with the same values of the ``equal`` labels are not paged by the built-in receivers.

An alert matching both a rule's source and target matchers does not inhibit itself (as in
Alertmanager). Only firing alerts are sources (pending and resolved ones inhibit nothing). An
inhibited alert stays an alert: it is on ``/metrics``, in ``replay --alerts-out`` (marked
``"inhibited": true`` on its transitions) and sent to Alertmanager (which applies its own rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from support_monitor.alerts.config import InhibitRule
from support_monitor.alerts.matchers import LabelMatcher, parse_matcher
from support_monitor.alerts.state import Alert, AlertState


class Inhibitor:
    """The configured inhibit rules, parsed once."""

    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self._rules: list[tuple[list[LabelMatcher], list[LabelMatcher], tuple[str, ...]]] = [
            (
                [parse_matcher(m) for m in rule.source_matchers],
                [parse_matcher(m) for m in rule.target_matchers],
                rule.equal,
            )
            for rule in rules
        ]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def inhibited(self, alerts: Iterable[Alert]) -> set[str]:
        """Fingerprints of the alerts (any state) that a firing alert inhibits now.
        O(rules x alerts)."""
        if not self._rules:
            return set()
        held = [(a, dict(a.labels)) for a in alerts]
        out: set[str] = set()
        for source, target, equal in self._rules:
            sources: dict[tuple[str, ...], set[str]] = {}
            for alert, labels in held:
                if alert.state is AlertState.FIRING and all(m.matches(labels) for m in source):
                    key = tuple(labels.get(name, "") for name in equal)
                    sources.setdefault(key, set()).add(alert.fingerprint)
            if not sources:
                continue
            for alert, labels in held:
                if alert.fingerprint in out or not all(m.matches(labels) for m in target):
                    continue
                by = sources.get(tuple(labels.get(name, "") for name in equal), set())
                if by - {alert.fingerprint}:
                    out.add(alert.fingerprint)
        return out
