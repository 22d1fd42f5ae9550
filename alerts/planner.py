"""Decides which notifications each receiver needs, from the alert states and what each receiver
was last told (``sent``: per receiver and fingerprint). Reconciling against ``sent`` rather than
reacting to transitions makes restarts and mute windows simple: a restored record means "already
paged"; a muted receiver just isn't reconciled until the window ends.

- firing, receiver not told about this activation -> ``new`` firing message;
- firing, told ``repeat_interval`` ago or longer -> ``repeat``;
- resolved (or gone) while the receiver was last told "firing" -> ``resolved`` (if send_resolved),
  unless no message that told it "firing" reached the receiver and the last one was refused or
  given up (``settled``): as in Alertmanager, no resolve follows a page the receiver never got.

Alerts of one receiver and ``group_by`` label values (a *group*: by default one channel) share
one message, as in Alertmanager: a group's first change waits ``group_wait`` for the rest of
the incident; once the group has been paged, later changes (new alerts, resolved ones, repeats)
go out together at most once per ``group_interval``, each message carrying every firing alert of
the group that is not held back and the resolved ones. Holding back (mute windows, silences,
inhibition) works per alert: held alerts are neither sent nor recorded.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec

from support_monitor.alerts.config import SlackReceiver, WebhookReceiver
from support_monitor.alerts.notify.message import AlertInfo, Notification
from support_monitor.alerts.routing import Router, Target
from support_monitor.alerts.state import Alert, AlertState

Delivery = Literal["planned", "delivered", "refused"]


class SentRecord(msgspec.Struct, kw_only=True):
    state: Literal["firing", "resolved"]
    at: float
    active_at: float
    alert: AlertInfo
    delivery: Delivery = "planned"
    """Of a firing record, what became of the messages that told this activation: one reached
    the receiver (``delivered``), none did and the last one was refused or given up
    (``refused``: no resolve is sent), or the last one is still on its way (``planned``, also
    in a snapshot from before this field)."""


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
        value_now=_finite(alert.value_now)
        if alert.resolved_at is not None or alert.kept_until is not None
        else None,
        kept_until=alert.kept_until if alert.resolved_at is None else None,
        upward=alert.upward,
        started_at=alert.started_at,
    )


class Holds(Protocol):
    """The console's silences and acknowledgements (``alerts.silences.PlannerHolds``)."""

    def held(self, labels: Mapping[str, str], now: float) -> bool: ...
    def acknowledged(self, fingerprint: str, active_at: float) -> bool: ...
    def annotate(self, info: AlertInfo, now: float) -> AlertInfo: ...


_Kind = Literal["new", "repeat", "resolved"]
_State = Literal["firing", "resolved"]
GroupKey = tuple[str, tuple[tuple[str, str], ...]]
"""A receiver and its route's ``group_by`` label values."""
Renderer = Callable[[Alert], None]
"""Fills an alert's annotations (from its latest signal) before a message tells it."""


def _as_is(alert: Alert) -> None:
    """The :data:`Renderer` of alerts whose annotations are always rendered: nothing to do."""


class GroupTiming(msgspec.Struct, kw_only=True):
    """When a group (receiver and ``group_by`` values) last got a message and since when it has
    had something to tell (``alerts.planner``: ``group_wait``/``group_interval``)."""

    receiver: str
    group: list[tuple[str, str]]
    due_since: float | None = None
    """First evaluation of the current wait at which a change of the group was due."""
    last_sent: float | None = None
    open: bool = False
    """The last message of the group had a firing alert: later changes are updates, sent at
    most once per ``group_interval``; else the next change starts a new incident, sent after
    ``group_wait``."""


@dataclass(slots=True)
class _Item:
    kind: _Kind | None
    state: _State
    target: Target
    alert: Alert | None
    info: AlertInfo | None
    """An orphan's info (its alert is gone); ``None`` for an item built from its alert."""


class Planner:
    def __init__(
        self, receivers: Mapping[str, SlackReceiver | WebhookReceiver], router: Router
    ) -> None:
        self.receivers = receivers
        self.router = router
        self.sent: dict[tuple[str, str], SentRecord] = {}
        self.groups: dict[GroupKey, GroupTiming] = {}
        """Timing per group; only groups with an alert that is firing or due and not held back
        (bounded by receivers x ``group_by`` values of the alerts held)."""
        self.holds: Holds | None = None
        """Console hook: a silenced alert is held like a muted one (reconciled when the silence
        ends); an acknowledged one gets no ``repeat``; firing messages carry the ack link."""
        self._latest = math.inf
        """The latest ``now`` planned at (``inf`` until the first plan, so that restored
        timings are checked against the clock once)."""

    @property
    def idle(self) -> bool:
        """No receiver was told of an alert still remembered and no group waits: planning
        without firing or resolved alerts would send nothing."""
        return not self.sent and not self.groups

    def relabelled(self, moved: Mapping[str, Alert]) -> None:
        """Alerts whose label set a reload changed (by their old fingerprint) keep what each
        receiver was told, under their new fingerprint and labels, where the new labels still
        route: such a receiver is not paged again. A receiver they no longer route to keeps
        its record under the old fingerprint, an orphan: it gets the alert's resolve."""
        for receiver, fp in list(self.sent):
            alert = moved.get(fp)
            if alert is None or alert.fingerprint == fp:
                continue
            if all(t.receiver != receiver for t in self.router.targets(alert.labels)):
                continue
            record = self.sent.pop((receiver, fp))
            record.alert = msgspec.structs.replace(
                record.alert, fingerprint=alert.fingerprint, labels=dict(alert.labels)
            )
            self.sent[receiver, alert.fingerprint] = record

    def plan(
        self,
        now: float,
        alerts: Iterable[Alert],
        inhibited: Container[str] = (),
        *,
        render: Renderer = _as_is,
    ) -> list[Notification]:
        """Notifications due now; updates ``sent`` as if they were delivered (the outbox makes
        sure they will be). ``inhibited``: fingerprints an inhibit rule holds back now (held
        like a silenced alert: nothing sent, nothing recorded). ``render`` is called for each
        alert a message tells, before its annotations are read."""
        if now < self._latest:
            self._clock_went_back(now)
        self._latest = now
        items: dict[GroupKey, list[_Item]] = {}
        seen: set[tuple[str, str]] = set()
        for alert in alerts:
            if alert.state is AlertState.PENDING:
                continue
            for target in self.router.targets(alert.labels):
                key = (target.receiver, alert.fingerprint)
                seen.add(key)
                if alert.fingerprint in inhibited or self._holding(now, target, alert):
                    continue
                kind = self._decide(now, target, alert)
                state: _State = "firing" if alert.state is AlertState.FIRING else "resolved"
                if kind is None and state == "resolved":
                    continue
                group = _group_key(target, dict(alert.labels))
                item = _Item(kind=kind, state=state, target=target, alert=alert, info=None)
                items.setdefault(group, []).append(item)
        self._orphans(now, seen, items)
        return self._flush(now, items, render)

    def _clock_went_back(self, now: float) -> None:
        """Group and record times later than ``now`` (restored from a run whose clock was
        ahead: the simulator faster than real time, or a wall clock stepped back) become
        ``now``: a group waits its ``group_interval`` and a repeat its ``repeat_interval`` from
        now, not until the old clock comes round again (a restart of the simulator at speed
        20 held every open group for minutes, and a page that fired and resolved meanwhile was
        never sent)."""
        for timing in self.groups.values():
            if timing.last_sent is not None and timing.last_sent > now:
                timing.last_sent = now
            if timing.due_since is not None and timing.due_since > now:
                timing.due_since = now
        for record in self.sent.values():
            record.at = min(record.at, now)

    def _holding(self, now: float, target: Target, alert: Alert) -> bool:
        return (
            self.router.muted(target, now)
            or (self.holds is not None and self.holds.held(dict(alert.labels), now))
            or target.receiver not in self.receivers
        )

    def _flush(
        self, now: float, items: dict[GroupKey, list[_Item]], render: Renderer
    ) -> list[Notification]:
        """One message per group that has a change due and whose wait is over."""
        out = []
        for group in [g for g in self.groups if g not in items]:
            del self.groups[group]  # no alert of it left to tell (or all held back): forget it
        for group, members in items.items():
            if not any(m.kind is not None for m in members):
                if group in self.groups:  # a change that was due went away unsent
                    self.groups[group].due_since = None
                continue  # firing alerts already told, nothing changed
            timing = self.groups.get(group) or GroupTiming(receiver=group[0], group=list(group[1]))
            self.groups[group] = timing
            target = members[0].target
            if timing.due_since is None:
                timing.due_since = now
            if timing.open and timing.last_sent is not None:
                ready = now - timing.last_sent >= target.group_interval
            else:
                ready = now - timing.due_since >= target.group_wait
            if not ready:
                continue
            out.append(self._message(now, group, members, render))
            timing.last_sent = now
            timing.due_since = None
            timing.open = any(m.state == "firing" for m in members)
            if not timing.open:
                del self.groups[group]
        return out

    def _message(
        self, now: float, group: GroupKey, members: list[_Item], render: Renderer
    ) -> Notification:
        """The group's message: its due changes and (as context) its other firing alerts;
        every alert in it is recorded as told."""
        receiver = group[0]
        infos = []
        kinds = set()
        for m in members:
            if m.alert is not None:
                render(m.alert)
            info = alert_info(m.alert) if m.alert is not None else m.info
            assert info is not None
            key = (receiver, info.fingerprint)
            if m.kind == "resolved" and m.alert is None:
                self.sent.pop(key, None)  # an orphan: its alert is gone
            else:
                told = _delivery(self.sent.get(key), m.state, info.active_at)
                self.sent[key] = SentRecord(
                    state=m.state, at=now, active_at=info.active_at, alert=info, delivery=told
                )
            if self.holds is not None and m.state == "firing":  # console: the ack link
                info = self.holds.annotate(info, now)
            infos.append(info)
            if m.kind is not None:
                kinds.add(m.kind)
        state: _State = "firing" if any(m.state == "firing" for m in members) else "resolved"
        kind: _Kind = "resolved"
        if "new" in kinds:
            kind = "new"
        elif "repeat" in kinds and "resolved" not in kinds:
            kind = "repeat"
        elif state == "firing":
            kind = "new"  # an update: some resolved, others still firing
        infos.sort(key=lambda a: (a.resolved_at is not None, a.fingerprint))
        digest = hashlib.sha256(
            "|".join([receiver, state, repr(now), *(a.fingerprint for a in infos)]).encode()
        ).hexdigest()[:32]
        return Notification(
            key=digest,
            receiver=receiver,
            state=state,
            kind=kind,
            created=now,
            group=dict(group[1]),
            alerts=tuple(infos),
        )

    def _decide(self, now: float, target: Target, alert: Alert) -> _Kind | None:
        receiver = self.receivers[target.receiver]
        record = self.sent.get((target.receiver, alert.fingerprint))
        if alert.state is AlertState.FIRING:
            if record is None or record.state == "resolved" or record.active_at != alert.active_at:
                return "new"
            repeat = receiver.repeat_interval
            due = repeat > 0 and now - record.at >= repeat
            return "repeat" if due and not self._acknowledged(alert) else None
        if record is None or record.state != "firing":
            return None
        if receiver.send_resolved and record.delivery != "refused":
            return "resolved"
        self.sent[(target.receiver, alert.fingerprint)] = SentRecord(
            state="resolved", at=now, active_at=record.active_at, alert=record.alert
        )
        return None

    def settled(self, n: Notification, *, delivered: bool) -> bool:
        """``n`` left the outbox: delivered, or refused or given up (``delivered`` false). Each
        alert it told firing is recorded as delivered, or as refused while no message of the
        same activation has reached the receiver: then its resolve is not sent (as
        Alertmanager sends none for an alert whose firing never went out) and a repeat after
        ``repeat_interval`` tries the page again. A refusal counts only from the last message
        that told the alert (its record's time is the message's): while a later one may still
        reach the receiver, the resolve must follow it. Whether a record changed."""
        changed = False
        for info in n.alerts:
            if info.resolved_at is not None:
                continue
            record = self.sent.get((n.receiver, info.fingerprint))
            if record is None or record.active_at != info.active_at:
                continue  # told since of another activation
            if not delivered and record.state == "firing" and record.at != n.created:
                continue  # a later message (still in the outbox, or settled) tells it too
            # (a resolve already planned waits in the outbox behind every message that tells
            # the alert firing: ``Deliverer.next_due``; ``unpaged_resolves_left_out`` reads
            # what they came to when it is due)
            outcome: Delivery = "delivered" if delivered else "refused"
            if record.delivery == "planned" or (delivered and record.delivery == "refused"):
                record.delivery = outcome
                changed = True
        return changed

    def unpaged_resolves_left_out(self, n: Notification) -> Notification | None:
        """``n`` as it may go out now, when it is due: without the resolves of alerts whose
        firing messages were all refused or given up (the resolve was planned while one was
        still on its way; the receiver never saw the page, so it gets no resolve either).
        ``None`` when nothing of it is left to tell: a message of resolves only."""
        kept = tuple(a for a in n.alerts if not self._never_paged(n.receiver, a))
        if len(kept) == len(n.alerts):
            return n
        if not kept or n.state == "resolved":
            return None
        return msgspec.structs.replace(n, alerts=kept)

    def _never_paged(self, receiver: str, info: AlertInfo) -> bool:
        record = self.sent.get((receiver, info.fingerprint))
        return (
            info.resolved_at is not None
            and record is not None
            and record.state == "resolved"
            and record.active_at == info.active_at
            and record.delivery == "refused"
        )

    # console hooks (no-ops without ``holds``)
    def _held(self, labels: Mapping[str, str], now: float) -> bool:
        return self.holds is not None and self.holds.held(labels, now)

    def _acknowledged(self, alert: Alert) -> bool:
        return self.holds is not None and self.holds.acknowledged(
            alert.fingerprint, alert.active_at
        )

    def _orphans(
        self, now: float, seen: set[tuple[str, str]], items: dict[GroupKey, list[_Item]]
    ) -> None:
        """Records whose alert is gone (retention passed while muted, rule removed, receiver no
        longer routed): resolve what was firing, forget the rest. Their resolved text is
        :func:`orphan_annotations`' fixed "no longer active" summary, with only the links and
        the site kept (the firing texts they hold would mislead)."""
        for key in [k for k in self.sent if k not in seen]:
            record = self.sent[key]
            receiver = self.receivers.get(key[0])
            if record.state != "firing" or receiver is None or record.delivery == "refused":
                del self.sent[key]
                continue
            target = Target(key[0], ("channel",), ())
            for routed in self.router.targets(tuple(sorted(record.alert.labels.items()))):
                if routed.receiver == key[0]:
                    target = routed
            if self.router.muted(target, now):
                continue
            if self._held(record.alert.labels, now):
                continue
            if not receiver.send_resolved:
                del self.sent[key]
                continue
            info = msgspec.structs.replace(
                record.alert, resolved_at=now, annotations=orphan_annotations(record.alert)
            )
            group = _group_key(target, info.labels)
            item = _Item(kind="resolved", state="resolved", target=target, alert=None, info=info)
            items.setdefault(group, []).append(item)


def _delivery(before: SentRecord | None, state: str, active_at: float) -> Delivery:
    """The ``delivery`` of a new record of an alert told ``state`` in a message, after
    ``before``: a resolve carries what became of the activation's firing messages (one still on
    its way settles it later: ``Planner.settled``); a repeat keeps "delivered"; anything else
    is "planned"."""
    if before is None or before.state != "firing" or before.active_at != active_at:
        return "planned"
    if state == "resolved":
        return before.delivery
    return "delivered" if before.delivery == "delivered" else "planned"


def orphan_annotations(info: AlertInfo) -> dict[str, str]:
    """A gone alert's annotations for its resolve message: its links, and a summary that
    says only that it is over (its firing texts would read as if it still were)."""
    labels = info.labels
    out = {k: v for k, v in info.annotations.items() if k.endswith("_url") or k == "site"}
    out["summary"] = (
        f"{labels.get('channel', '')}: {labels.get('alertname', 'alert')} no longer active "
        "(its rule was removed or its state expired)"
    )
    return out


def _group_key(target: Target, labels: Mapping[str, str]) -> GroupKey:
    return (target.receiver, tuple((k, labels.get(k, "")) for k in target.group_by))
