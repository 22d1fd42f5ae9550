"""Decides which notifications each receiver needs, from the alert states and what each receiver
was last told (``sent``: per receiver and fingerprint). Reconciling against ``sent`` rather than
reacting to transitions makes restarts and mute windows simple: a restored record means "already
paged"; a muted receiver just isn't reconciled until the window ends.

- firing, receiver not told about this activation -> ``new`` firing message;
- firing, told ``repeat_interval`` ago or longer -> ``repeat``;
- resolved (or gone) while the receiver was last told "firing" -> ``resolved`` (if send_resolved).

Alerts for one receiver, state and ``group_by`` label values in the same evaluation share one
message.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

import msgspec

from support_monitor.alerts.config import SlackReceiver, WebhookReceiver
from support_monitor.alerts.notify.message import AlertInfo, Notification
from support_monitor.alerts.routing import Router, Target
from support_monitor.alerts.state import Alert, AlertState


class SentRecord(msgspec.Struct, kw_only=True):
    state: Literal["firing", "resolved"]
    at: float
    active_at: float
    alert: AlertInfo


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def alert_info(alert: Alert) -> AlertInfo:
    return AlertInfo(
        fingerprint=alert.fingerprint,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        value=_finite(alert.value),
        threshold=_finite(alert.threshold),
        expected=_finite(alert.expected),
        active_at=alert.active_at,
        fired_at=alert.fired_at,
        resolved_at=alert.resolved_at,
    )


class Holds(Protocol):
    """The console's silences and acknowledgements (``alerts.silences.PlannerHolds``)."""

    def held(self, labels: Mapping[str, str], now: float) -> bool: ...
    def acknowledged(self, fingerprint: str, active_at: float) -> bool: ...
    def annotate(self, info: AlertInfo, now: float) -> AlertInfo: ...


_Kind = Literal["new", "repeat", "resolved"]
_State = Literal["firing", "resolved"]


class Planner:
    def __init__(
        self, receivers: Mapping[str, SlackReceiver | WebhookReceiver], router: Router
    ) -> None:
        self.receivers = receivers
        self.router = router
        self.sent: dict[tuple[str, str], SentRecord] = {}
        self.holds: Holds | None = None
        """Console hook: a silenced alert is held like a muted one (reconciled when the silence
        ends); an acknowledged one gets no ``repeat``; firing messages carry the ack link."""

    def plan(self, now: float, alerts: Iterable[Alert]) -> list[Notification]:
        """Notifications due now; updates ``sent`` as if they were delivered (the outbox makes
        sure they will be)."""
        batch = _Batch()
        seen: set[tuple[str, str]] = set()
        for alert in alerts:
            if alert.state is AlertState.PENDING:
                continue
            for target in self.router.targets(alert.labels):
                key = (target.receiver, alert.fingerprint)
                seen.add(key)
                kind = self._decide(now, target, alert)
                if kind is None:
                    continue
                info = alert_info(alert)
                state: _State = "resolved" if kind == "resolved" else "firing"
                self.sent[key] = SentRecord(
                    state=state, at=now, active_at=alert.active_at, alert=info
                )
                if self.holds is not None and state == "firing":  # console: the ack link
                    info = self.holds.annotate(info, now)
                batch.add(target, state, kind, info)
        self._orphans(now, seen, batch)
        return batch.build(now)

    def _decide(self, now: float, target: Target, alert: Alert) -> _Kind | None:
        if self.router.muted(target, now) or (
            self.holds is not None and self.holds.held(dict(alert.labels), now)
        ):
            return None
        receiver = self.receivers.get(target.receiver)
        if receiver is None:
            return None
        record = self.sent.get((target.receiver, alert.fingerprint))
        if alert.state is AlertState.FIRING:
            if record is None or record.state == "resolved" or record.active_at != alert.active_at:
                return "new"
            repeat = receiver.repeat_interval
            due = repeat > 0 and now - record.at >= repeat
            return "repeat" if due and not self._acknowledged(alert) else None
        if record is not None and record.state == "firing" and receiver.send_resolved:
            return "resolved"
        if record is not None and record.state == "firing":
            self.sent[(target.receiver, alert.fingerprint)] = SentRecord(
                state="resolved", at=now, active_at=record.active_at, alert=record.alert
            )
        return None

    # console hooks (no-ops without ``holds``)
    def _held(self, labels: Mapping[str, str], now: float) -> bool:
        return self.holds is not None and self.holds.held(labels, now)

    def _acknowledged(self, alert: Alert) -> bool:
        return self.holds is not None and self.holds.acknowledged(
            alert.fingerprint, alert.active_at
        )

    def _orphans(self, now: float, seen: set[tuple[str, str]], batch: _Batch) -> None:
        """Records whose alert is gone (retention passed while muted, rule removed, receiver no
        longer routed): resolve what was firing, forget the rest."""
        for key in [k for k in self.sent if k not in seen]:
            record = self.sent[key]
            receiver = self.receivers.get(key[0])
            if record.state != "firing" or receiver is None:
                del self.sent[key]
                continue
            target = Target(key[0], ("alertname", "channel"), ())
            for routed in self.router.targets(tuple(sorted(record.alert.labels.items()))):
                if routed.receiver == key[0]:
                    target = routed
            if self.router.muted(target, now):
                continue
            if self._held(record.alert.labels, now):
                continue
            del self.sent[key]
            if receiver.send_resolved:
                info = msgspec.structs.replace(record.alert, resolved_at=now)
                batch.add(target, "resolved", "resolved", info)


_GroupKey = tuple[str, _State, tuple[tuple[str, str], ...]]


class _Batch:
    """Due alerts of one evaluation, grouped by receiver, state and ``group_by`` values."""

    def __init__(self) -> None:
        self.due: dict[_GroupKey, list[AlertInfo]] = {}
        self.kinds: dict[_GroupKey, _Kind] = {}

    def add(self, target: Target, state: _State, kind: _Kind, info: AlertInfo) -> None:
        group = tuple((k, info.labels.get(k, "")) for k in target.group_by)
        key = (target.receiver, state, group)
        self.due.setdefault(key, []).append(info)
        if self.kinds.get(key) != "new":
            self.kinds[key] = kind

    def build(self, now: float) -> list[Notification]:
        out = []
        for (receiver, state, group), infos in self.due.items():
            infos.sort(key=lambda a: a.fingerprint)
            digest = hashlib.sha256(
                "|".join([receiver, state, repr(now), *(a.fingerprint for a in infos)]).encode()
            ).hexdigest()[:32]
            out.append(
                Notification(
                    key=digest,
                    receiver=receiver,
                    state=state,
                    kind=self.kinds[(receiver, state, group)],
                    created=now,
                    group=dict(group),
                    alerts=tuple(infos),
                )
            )
        return out
