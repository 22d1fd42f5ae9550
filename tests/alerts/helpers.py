"""Shared builders for the alerts tests (signals, rules, settings)."""

from __future__ import annotations

from typing import Any

from support_monitor.alerts.config import AlertRule, AlertSettings, NotifierSettings
from support_monitor.alerts.rules import CompiledRule
from support_monitor.alerts.state import Alert, AlertState
from support_monitor.detectors.signal import Signal


def firing_alert(labels: tuple[tuple[str, str], ...], active_at: float) -> Alert:
    """A firing alert of ``labels`` (sorted pairs), active and fired at ``active_at``."""
    return Alert(
        labels=labels,
        annotations={"summary": "wait"},
        state=AlertState.FIRING,
        value=50.0,
        active_at=active_at,
        fired_at=active_at,
    )


def sig(
    detector: str = "longest_wait",
    channel: str = "voice",
    *,
    active: bool = True,
    score: float = 42.0,
    threshold: float = 30.0,
    **labels: str,
) -> Signal:
    return Signal(
        detector,
        channel,
        active,
        score,
        threshold,
        labels=tuple(sorted(labels.items())),
        summary="why",
    )


def rule(**fields: Any) -> AlertRule:
    data: dict[str, Any] = {"alert": "LongWait", "detector": "longest_wait", "severity": "critical"}
    data.update(fields)
    return AlertRule.model_validate(data)


def alert_settings(*rules: AlertRule, **fields: Any) -> AlertSettings:
    return AlertSettings.model_validate({"rules": list(rules), **fields})


def compiled(**fields: Any) -> CompiledRule:
    r = rule(**fields)
    return CompiledRule(r, alert_settings(r))


def notifier_settings(**fields: Any) -> NotifierSettings:
    return NotifierSettings.model_validate(fields)
