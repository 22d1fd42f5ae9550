"""Alert rules over detector signals: which signals are the condition, which labels the alert
carries, how its annotations read. The state machine itself lives in ``alerts.state``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from support_monitor.alerts.config import AlertRule, AlertSettings
from support_monitor.alerts.links import keep_links
from support_monitor.alerts.state import Alert, Labels, RuleState, Sample, Transition
from support_monitor.alerts.template import render
from support_monitor.alerts.timefmt import rfc3339
from support_monitor.detectors.signal import Signal


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
        self._samples: dict[int, tuple[Signal, Sample]] = {}
        """The last evaluation's samples by signal identity: a signal the detector handed out
        again unchanged gives the same sample."""
        self._labels: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = {}
        self._unrendered: dict[int, tuple[Signal, dict[str, str]]] = {}
        """Annotation dicts not rendered yet (by ``id``), with the signal they are for."""

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

    def annotations(self, signal: Signal, labels: Labels) -> dict[str, str]:
        """The rule's annotations rendered for one signal (links kept only if absolute)."""
        data: dict[str, str | float] = {
            **dict(labels),
            **self._links,
            "value": signal.score,
            "score": signal.score,
            "threshold": signal.threshold,
            "expected": signal.expected,
            "signal_summary": signal.summary,
            "detector": signal.detector,
        }
        return keep_links({key: render(text, data) for key, text in self.rule.annotations.items()})

    def sample(self, signal: Signal) -> Sample:
        """The sample of one signal, annotations rendered."""
        labels = self.labels_for(signal)
        annotations = self.annotations(signal, labels)
        return Sample(labels, signal.score, annotations, signal.threshold, signal.expected)

    def _lazy_sample(self, signal: Signal) -> Sample:
        """The sample of one signal with an empty annotations dict, filled (in place) by
        ``_render`` only when the alert changes state or is read."""
        key = (signal.channel, signal.labels)
        labels = self._labels.get(key)
        if labels is None:
            if len(self._labels) >= _LABEL_CACHE:
                self._labels.clear()
            labels = self._labels[key] = self.labels_for(signal)
        annotations: dict[str, str] = {}
        self._unrendered[id(annotations)] = (signal, annotations)
        return Sample(labels, signal.score, annotations, signal.threshold, signal.expected)

    def _render(self, alert: Alert) -> None:
        entry = self._unrendered.pop(id(alert.annotations), None)
        if entry is not None and entry[1] is alert.annotations:
            entry[1].update(self.annotations(entry[0], alert.labels))

    def eval(self, now: float, signals: Iterable[Signal]) -> list[Transition]:
        """One evaluation over the tick's signals (only active ones matter). A signal handed out
        again unchanged reuses its sample; annotations are rendered only for the alerts whose
        state changes (and when alerts are read, ``alerts()``). With nothing active and no alert
        held the state machine has nothing to do and is not run."""
        samples = []
        last = self._samples
        seen: dict[int, tuple[Signal, Sample]] = {}
        for signal in signals:
            if not signal.active or not self.applies(signal):
                continue
            hit = last.get(id(signal))
            sample = hit[1] if hit is not None and hit[0] is signal else self._lazy_sample(signal)
            seen[id(signal)] = (signal, sample)
            samples.append(sample)
        self._samples = seen
        if not samples and not self.state.active:
            self._unrendered.clear()  # no sample or alert uses any of them any more
            return []  # RuleState.eval would change nothing and return no transition
        transitions = self.state.eval(now, samples)
        for transition in transitions:
            self._render(transition.alert)
        if self._unrendered:
            self._forget(samples)
        return transitions

    def _forget(self, samples: list[Sample]) -> None:
        """Keep unrendered entries only for dicts a current sample or a held alert still uses
        (bounded by the active signals and the alerts held)."""
        old = self._unrendered
        keep: dict[int, tuple[Signal, dict[str, str]]] = {}
        for used in [s.annotations for s in samples] + [
            a.annotations for a in self.state.active.values()
        ]:
            entry = old.get(id(used))
            if entry is not None and entry[1] is used:
                keep[id(used)] = entry
        self._unrendered = keep

    def alerts(self) -> Iterator[Alert]:
        """The alerts held, annotations rendered."""
        held = list(self.state.active.values())
        for alert in held:
            self._render(alert)
        return iter(held)

    def held(self) -> Iterator[Alert]:
        """The alerts held, as they are (annotations may not be rendered yet)."""
        return iter(list(self.state.active.values()))

    def adopt(self, old: CompiledRule) -> None:
        """Take over the alerts of the same rule before a reload (annotations rendered)."""
        old.alerts()
        self.state.active = old.state.active


_LABEL_CACHE = 4096
"""Label sets kept per rule (one per channel and signal label set seen); cleared past it."""


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
