"""Alert rules over detector signals: which signals are the condition, which labels the alert
carries, how its annotations read. The state machine itself lives in ``alerts.state``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from alerts.config import AlertRule, AlertSettings
from alerts.state import Alert, Labels, RuleState, Sample, Transition
from alerts.template import render
from alerts.timefmt import rfc3339
from detectors.signal import Signal


class CompiledRule:
    """One configured rule and the alerts it currently holds."""

    def __init__(self, rule: AlertRule, settings: AlertSettings) -> None:
        self.rule = rule
        self.key = rule.key
        self._channels = frozenset(rule.channels) if rule.channels is not None else None
        self._links = {
            "runbook_base_url": settings.runbook_base_url,
            "dashboard_base_url": settings.dashboard_base_url,
        }
        self.state = RuleState(rule.for_, rule.keep_firing_for, settings.resolved_retention)

    def labels_for(self, signal: Signal) -> Labels:
        """Signal labels, then the rule's labels and severity, then alertname (Prometheus order)."""
        merged = dict(signal.labels)
        merged["channel"] = signal.channel
        merged.update(self.rule.labels)
        merged["severity"] = self.rule.severity
        merged["alertname"] = self.rule.alert
        return tuple(sorted(merged.items()))

    def applies(self, signal: Signal) -> bool:
        if signal.detector != self.rule.detector:
            return False
        if self._channels is not None and signal.channel not in self._channels:
            return False
        if self.rule.match:
            labels = dict(signal.labels)
            labels["channel"] = signal.channel
            return all(labels.get(k) == v for k, v in self.rule.match.items())
        return True

    def sample(self, signal: Signal) -> Sample:
        labels = self.labels_for(signal)
        data: dict[str, str | float] = {
            **dict(labels), **self._links,
            "value": signal.score, "score": signal.score, "threshold": signal.threshold,
            "expected": signal.expected, "signal_summary": signal.summary,
            "detector": signal.detector,
        }
        annotations = {key: render(text, data) for key, text in self.rule.annotations.items()}
        return Sample(labels, signal.score, annotations, signal.threshold, signal.expected)

    def eval(self, now: float, signals: Iterable[Signal]) -> list[Transition]:
        samples = [self.sample(s) for s in signals if s.active and self.applies(s)]
        return self.state.eval(now, samples)

    def alerts(self) -> Iterator[Alert]:
        return iter(list(self.state.active.values()))


def transition_record(transition: Transition, now: float) -> dict[str, object]:
    """The JSON-able record written by ``replay --alerts-out`` and logged."""
    alert = transition.alert
    value = alert.value if math.isfinite(alert.value) else None
    return {
        "ts": now,
        "time": rfc3339(now),
        "alertname": alert.label("alertname"),
        "state": transition.state,
        "previous": transition.previous,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "value": value,
        "active_at": alert.active_at,
        "fingerprint": alert.fingerprint,
    }
