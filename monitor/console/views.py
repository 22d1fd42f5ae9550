"""What the console shows, read the way ``/metrics`` and the detectors read it.

Channel numbers come from ``monitor.engine.readout`` (``LIVE_GAUGES`` summed over a channel's
queues, ``WINDOW_GAUGES`` over each window's totals), so a tile equals the matching series of a
scrape at the same instant. Alerts are read from the rules' states (``CompiledRule.alerts()``),
the same objects the planner and ``support_alerts`` read. Nothing here changes any state.
Only counts, labels and the free-text names of acknowledgements are shown: no contact or ticket
ids, no customer data.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from support_monitor.alerts.rules import CompiledRule
from support_monitor.alerts.silences import ACK_URL, ConsoleStore, Silence, format_time
from support_monitor.alerts.state import Alert, AlertState
from support_monitor.monitor.engine.clocks import CLOCKS
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import LIVE_GAUGES, WINDOW_GAUGES
from support_monitor.monitor.engine.state import ChannelRuntime
from support_monitor.monitor.engine.windows import Agg

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_STATUS_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


def finite(value: float) -> float | None:
    """JSON has no NaN: an undefined ratio (no contacts in the window) is ``null``."""
    return value if math.isfinite(value) else None


def _live(channel: ChannelRuntime, name: str, now: float, sla: str = "") -> float:
    gauge = LIVE_GAUGES[name]
    return sum(v for q in channel.queues.values() for label, v in gauge(q, now) if label == sla)


def _oldest(channel: ChannelRuntime, now: float) -> float:
    gauge = LIVE_GAUGES["support_queue_oldest_wait_seconds"]
    return max((v for q in channel.queues.values() for _, v in gauge(q, now)), default=0.0)


def _window(name: str, totals: Agg, quantile: str | None = None) -> float | None:
    return finite(float(WINDOW_GAUGES[name](totals, quantile)))


def channel_view(channel: ChannelRuntime, now: float) -> dict[str, Any]:
    """One channel's tiles: live gauges (summed over its queues; the oldest wait is the
    maximum) and, per window, service level, abandon ratio, wait p90, CSAT and complaints."""
    settings = channel.settings
    windows = []
    for window, totals in zip(channel.windows.names, channel.windows.totals, strict=True):
        windows.append(
            {
                "window": window,
                "serviceLevel": _window("support_service_level_ratio", totals),
                "abandonRatio": _window("support_abandon_ratio", totals),
                "abandoned": totals.abandoned - totals.abandoned_short,
                "answered": totals.answered,
                "waitP90Seconds": _window("support_wait_quantile_seconds", totals, "0.9"),
                "csat": _window("support_csat_ratio", totals),
                "ratings": totals.ratings,
                "complaints": _window("support_complaints_window", totals),
            }
        )
    return {
        "channel": channel.name,
        "queues": sorted(channel.queues),
        "answerSeconds": settings.answer_seconds,
        "serviceLevelTarget": settings.service_level_target,
        "firstResponseSeconds": settings.first_response_seconds,
        "nextReplySeconds": settings.next_reply_seconds,
        "resolutionSeconds": settings.resolution_seconds,
        "waiting": _live(channel, "support_queue_waiting", now),
        "oldestWaitSeconds": _oldest(channel, now),
        "breachedWaiting": _live(channel, "support_queue_breached_waiting", now),
        "ticketsOpen": _live(channel, "support_tickets_open", now),
        "ticketsAtRisk": {
            sla: _live(channel, "support_tickets_at_risk", now, sla)
            for sla in CLOCKS  # first_response, next_reply, resolution: as the wall board
        },
        "windows": windows,
    }


def channels_view(engine: Engine) -> list[dict[str, Any]]:
    now = engine.now
    return [channel_view(engine.channels[name], now) for name in sorted(engine.channels)]


def _time(ts: float | None) -> str | None:
    return None if ts is None or not math.isfinite(ts) else format_time(ts)


def alert_view(alert: Alert, store: ConsoleStore, now: float) -> dict[str, Any]:
    labels = dict(alert.labels)
    ack = store.acknowledged(alert.fingerprint, alert.active_at)
    silence = store.silenced(labels, now)
    since = alert.fired_at if alert.fired_at is not None else alert.active_at
    return {
        "fingerprint": alert.fingerprint,
        "alertname": labels.get("alertname", ""),
        "channel": labels.get("channel", ""),
        "severity": labels.get("severity", ""),
        "status": alert.status,
        "labels": labels,
        "annotations": {k: v for k, v in alert.annotations.items() if k != ACK_URL},
        "value": finite(alert.value),
        "threshold": finite(alert.threshold),
        "activeAt": _time(alert.active_at),
        "firedAt": _time(alert.fired_at),
        "resolvedAt": _time(alert.resolved_at),
        "ageSeconds": max(0.0, now - since) if alert.resolved_at is None else None,
        "acknowledged": None
        if ack is None
        else {"by": ack.by, "at": format_time(ack.at), "via": ack.via},
        "silencedBy": None if silence is None else silence.id,
    }


def alerts_of(rules: Iterable[CompiledRule]) -> list[Alert]:
    """Every alert the rules hold now: pending, firing and resolved-but-retained."""
    return [alert for rule in rules for alert in rule.alerts()]


def find_alert(rules: Iterable[CompiledRule], fingerprint: str) -> Alert | None:
    for alert in alerts_of(rules):
        if alert.fingerprint == fingerprint:
            return alert
    return None


def live_activations(rules: Iterable[CompiledRule]) -> list[tuple[str, float]]:
    return [
        (a.fingerprint, a.active_at) for a in alerts_of(rules) if a.state is not AlertState.INACTIVE
    ]


def alerts_view(
    rules: Iterable[CompiledRule],
    store: ConsoleStore,
    now: float,
    statuses: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Firing first, then pending, then resolved; by severity, then oldest first. ``statuses``:
    only alerts with one of them."""
    views = [alert_view(a, store, now) for a in alerts_of(rules)]
    if statuses is not None:
        views = [v for v in views if v["status"] in statuses]
    views.sort(
        key=lambda v: (
            _STATUS_ORDER.get(v["status"], 3),
            _SEVERITY_ORDER.get(v["severity"], 3),
            v["activeAt"] or "",
            v["fingerprint"],
        )
    )
    return views


def silence_view(silence: Silence, now: float) -> dict[str, Any]:
    return {
        "id": silence.id,
        "status": silence.status(now),
        "matchers": [
            {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
            for m in silence.matchers
        ],
        "startsAt": format_time(silence.starts_at),
        "endsAt": format_time(silence.ends_at),
        "createdBy": silence.created_by,
        "comment": silence.comment,
        "updatedAt": format_time(silence.updated_at),
    }


def silences_view(store: ConsoleStore, now: float) -> list[dict[str, Any]]:
    order = {"active": 0, "pending": 1, "expired": 2}
    views = [silence_view(s, now) for s in store.silences.values()]
    views.sort(key=lambda v: (order[v["status"]], v["endsAt"], v["id"]))
    return views


class Timeline:
    """The last ``size`` alert transitions (``Alerting``'s ``on_transition``), newest first."""

    def __init__(self, size: int) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=size)

    def __call__(self, record: Mapping[str, object]) -> None:
        labels, ts = record.get("labels"), record.get("ts")
        channel = labels.get("channel", "") if isinstance(labels, dict) else ""
        self._records.appendleft(
            {
                "time": format_time(ts) if isinstance(ts, float | int) else None,
                "alertname": record.get("alertname"),
                "channel": channel,
                "state": record.get("state"),
                "previous": record.get("previous"),
                "value": record.get("value"),
                "fingerprint": record.get("fingerprint"),
            }
        )

    def view(self) -> list[dict[str, Any]]:
        return list(self._records)
