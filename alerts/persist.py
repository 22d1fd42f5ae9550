"""The alert-state snapshot stored next to the outbox: every alert (pending, firing, resolved and
retained) per rule, and what each receiver was last told. JSON via msgspec; NaN stored as null."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import msgspec

from support_monitor.alerts.planner import GroupKey, GroupTiming, SentRecord
from support_monitor.alerts.rules import CompiledRule
from support_monitor.alerts.state import Alert, AlertState

VERSION = 1


class StoredAlert(msgspec.Struct, kw_only=True):
    rule: str
    labels: list[tuple[str, str]]
    annotations: dict[str, str]
    state: str
    value: float | None
    threshold: float | None
    expected: float | None
    active_at: float
    fired_at: float | None
    resolved_at: float | None
    keep_firing_since: float | None
    value_now: float | None = None
    started_at: float | None = None


class StoredSent(msgspec.Struct, kw_only=True):
    receiver: str
    fingerprint: str
    record: SentRecord


class Snapshot(msgspec.Struct, kw_only=True):
    version: int = VERSION
    alerts: list[StoredAlert] = []
    sent: list[StoredSent] = []
    groups: list[GroupTiming] = []
    """Per receiver and group: when it was last paged and since when a change waits."""
    evaluated_at: float | None = None
    """The latest evaluation the state reflects (a clean stop stores the last one)."""


def _opt(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def dump(
    rules: Iterable[CompiledRule],
    sent: dict[tuple[str, str], SentRecord],
    groups: Mapping[GroupKey, GroupTiming] | None = None,
    evaluated_at: float | None = None,
) -> bytes:
    alerts = [
        StoredAlert(
            rule=rule.key,
            labels=list(a.labels),
            annotations=a.annotations,
            state=a.state.value,
            value=_opt(a.value),
            threshold=_opt(a.threshold),
            expected=_opt(a.expected),
            active_at=a.active_at,
            fired_at=a.fired_at,
            resolved_at=a.resolved_at,
            keep_firing_since=a.keep_firing_since,
            value_now=_opt(a.value_now),
            started_at=a.started_at,
        )
        for rule in rules
        for a in rule.alerts()
    ]
    records = [StoredSent(receiver=r, fingerprint=fp, record=rec) for (r, fp), rec in sent.items()]
    timings = list((groups or {}).values())
    return msgspec.json.encode(
        Snapshot(alerts=alerts, sent=records, groups=timings, evaluated_at=evaluated_at)
    )


_LATEST = 253402300800.0
"""10000-01-01 UTC: a stored time at or past it (event times end before 9000) is damage."""


def _check_time(value: float | None, what: str) -> None:
    if value is not None and not 0.0 <= value < _LATEST:  # NaN fails both
        raise ValueError(f"{what} {value!r} is not a time")


def decode(data: bytes) -> Snapshot:
    """The snapshot in ``data``; ``ValueError`` (or a ``msgspec.DecodeError``) when it does not
    decode, names an unknown alert state, or holds a time that is not one (negative, not
    finite, past the year 9999): such a row is damaged, and nothing of it is used."""
    snapshot = msgspec.json.decode(data, type=Snapshot)
    _check_time(snapshot.evaluated_at, "evaluated_at")
    for a in snapshot.alerts:
        AlertState(a.state)
        for name in ("active_at", "fired_at", "resolved_at", "keep_firing_since", "started_at"):
            _check_time(getattr(a, name), name)
    for sent in snapshot.sent:
        _check_time(sent.record.at, "sent at")
        _check_time(sent.record.active_at, "sent active_at")
    for group in snapshot.groups:
        _check_time(group.due_since, "due_since")
        _check_time(group.last_sent, "last_sent")
    return snapshot


class Loaded(NamedTuple):
    """What :func:`load` restored: alerts put back, the planner's sent records and group
    timings (none in a snapshot written before they existed)."""

    alerts: int
    sent: dict[tuple[str, str], SentRecord]
    groups: dict[GroupKey, GroupTiming]


def load(data: bytes, rules: Iterable[CompiledRule]) -> Loaded:
    """Put stored alerts back into their rules (by rule key); returns what it restored.
    Alerts of rules that no longer exist are dropped; their receivers get a resolve message.
    Each rule learns the stored evaluation time (``RuleState.resumed_at``): a firing alert
    whose condition is gone at the first evaluation keeps firing from then on, not from the
    restart. A damaged snapshot (:func:`decode`) raises before any rule is changed."""
    snapshot = decode(data)
    by_key = {rule.key: rule for rule in rules}
    alerts: list[tuple[CompiledRule, Alert]] = []
    for stored in snapshot.alerts:
        rule = by_key.get(stored.rule)
        if rule is None:
            continue
        alert = Alert(
            labels=tuple(sorted((k, v) for k, v in stored.labels)),
            annotations=stored.annotations,
            state=AlertState(stored.state),
            value=_nan(stored.value),
            active_at=stored.active_at,
            threshold=_nan(stored.threshold),
            expected=_nan(stored.expected),
            fired_at=stored.fired_at,
            resolved_at=stored.resolved_at,
            keep_firing_since=stored.keep_firing_since,
            value_now=_nan(stored.value_now),
            started_at=stored.started_at,
        )
        alerts.append((rule, alert))
    for compiled in by_key.values():
        compiled.state.resumed_at = snapshot.evaluated_at
    for rule, alert in alerts:
        rule.state.active[alert.fingerprint] = alert
    return Loaded(
        len(alerts),
        {(s.receiver, s.fingerprint): s.record for s in snapshot.sent},
        {(g.receiver, tuple((k, v) for k, v in g.group)): g for g in snapshot.groups},
    )
