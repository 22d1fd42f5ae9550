"""Per-rule alert state machine, a transcription of Prometheus' ``AlertingRule.Eval``
(rules/alerting.go) driven by an injected ``now``: inactive -> pending -> firing -> resolved.

- a new active sample creates a *pending* alert with ``active_at = now``; with ``for: 0`` it
  fires in the same evaluation (``now - active_at >= for``);
- a pending alert whose condition clears is dropped;
- a firing alert whose condition clears keeps firing while ``now - keep_firing_since <
  keep_firing_for``, then becomes inactive with ``resolved_at = now``;
- a resolved alert is kept ``resolved_retention`` (strictly longer is deleted) so it is re-sent
  as resolved; if its condition returns it is replaced by a new pending alert. The resolved one
  is then kept aside (``RuleState.replaced``), for notifications only, so that a resolve not
  yet sent goes out with its own times and texts; it is gone once the new one fires (the
  incident goes on) or its retention passes.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from enum import StrEnum

from support_monitor.monitor.durations import lasted, outlasted

Labels = tuple[tuple[str, str], ...]
# Label sets whose fingerprint is remembered (about 200 bytes each).
FINGERPRINT_CACHE = 4096


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@functools.lru_cache(maxsize=FINGERPRINT_CACHE)
def fingerprint(labels: Labels) -> str:
    """Stable across processes (unlike ``hash``): sha256 of the sorted label pairs. The last
    ``FINGERPRINT_CACHE`` label sets are remembered: a rule fingerprints each of its samples on
    every evaluation."""
    digest = hashlib.sha256()
    for key, value in sorted(labels):
        digest.update(key.encode())
        digest.update(b"\xff")
        digest.update(value.encode())
        digest.update(b"\xff")
    return digest.hexdigest()[:16]


@dataclass(slots=True)
class Alert:
    labels: Labels
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at: float
    threshold: float = float("nan")
    expected: float = float("nan")
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent_at: float | None = None
    """Event time of the last post to Alertmanager (was it resolved since: ``needs_sending``)."""
    last_sent_wall: float | None = None
    """Wall clock: when it was last posted to Alertmanager (is a resend due: ``needs_sending``)."""
    valid_until: float | None = None
    """Wall clock: the ``endsAt`` of a firing alert's last post to Alertmanager."""
    am_starts_at: float | None = None
    """Wall clock: the ``startsAt`` sent to Alertmanager, fixed at this activation's first post."""
    am_ends_at: float | None = None
    """Wall clock: the ``endsAt`` of a resolved alert, fixed at its first post after resolving."""
    keep_firing_since: float | None = None
    kept_until: float | None = None
    """While kept firing (its condition gone, ``keep_firing_for`` not over): when it resolves
    unless the condition returns (``keep_firing_since + keep_firing_for``); else None."""
    value_now: float = float("nan")
    """Once resolved: the detector's value at the evaluation that resolved it; while kept
    firing: its value at the latest evaluation (NaN: none)."""
    upward: bool | None = None
    """Whether a higher value is worse for its detector (None: unknown); set by its rule."""
    started_at: float | None = None
    """When its trouble began, as its texts count it: ``active_at``, or earlier when its
    detector held the condition before saying active (``Signal.since``); set by its rule
    when it renders the texts (None: not rendered yet)."""
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.labels)

    def label(self, key: str) -> str:
        for k, v in self.labels:
            if k == key:
                return v
        return ""

    @property
    def status(self) -> str:
        """``pending``/``firing``, or ``resolved`` for a retained inactive alert."""
        if self.state is AlertState.INACTIVE:
            return "resolved"
        return self.state.value

    def needs_sending(self, resend_delay: float, wall: float) -> bool:
        """Prometheus' ``needsSending``: firing or resolved-since-last-send (on the daemon's
        clock), or resend due (on the wall clock ``wall``: Alertmanager expires a firing alert
        by its own clock, whatever the simulator's speed)."""
        if self.state is AlertState.PENDING:
            return False
        if self.resolved_at is not None and (
            self.last_sent_at is None or self.resolved_at > self.last_sent_at
        ):
            return True
        return self.last_sent_wall is None or self.last_sent_wall + resend_delay < wall


@dataclass(frozen=True, slots=True)
class Sample:
    """One active condition: the alert's full label set, value and rendered annotations."""

    labels: Labels
    value: float
    annotations: dict[str, str]
    threshold: float = float("nan")
    expected: float = float("nan")
    live: bool = True
    """``False``: the condition is only held by its detector's persistence: a pending alert
    does not fire on it (see ``Signal.live``)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change seen by one evaluation; ``state`` is pending/firing/resolved/inactive."""

    alert: Alert
    state: str
    previous: str


@dataclass(slots=True)
class RuleState:
    hold: float
    keep_firing_for: float
    resolved_retention: float
    active: dict[str, Alert] = field(default_factory=dict)
    replaced: dict[str, Alert] = field(default_factory=dict)
    """Fingerprint -> the resolved alert a pending one replaced (see the module doc)."""
    resumed_at: float | None = None
    """After a restart, until the first evaluation: the last evaluation the stored state saw.
    A firing alert whose condition is gone then counts ``keep_firing_for`` from that instant
    (the condition ended while the daemon was down), not from the restart."""
    keep_changed: bool = False
    """A ``keep_firing_since`` was set or cleared (no transition, but stored state to write);
    the runtime takes it back to ``False`` when it marks the state to be stored."""

    def eval(self, now: float, samples: list[Sample]) -> list[Transition]:
        before = {fp: a.status for fp, a in self.active.items()}
        present, held = self._take(now, samples)
        dropped: list[Transition] = []
        for fp, alert in list(self.active.items()):
            if fp not in present:
                if self._cleared(now, fp, alert):
                    dropped.append(Transition(alert, "inactive", "pending"))
                continue
            if alert.keep_firing_since is not None:
                alert.keep_firing_since = alert.kept_until = None
                alert.value_now = math.nan
                self.keep_changed = True
            if (
                alert.state is AlertState.PENDING
                and lasted(now, alert.active_at, self.hold)
                and fp not in held
            ):
                alert.state = AlertState.FIRING
                alert.fired_at = now
                self.replaced.pop(fp, None)
        self.resumed_at = None
        changes = dropped + self._changes(before)
        for fp, old in list(self.replaced.items()):
            if old.resolved_at is None or outlasted(now, old.resolved_at, self.resolved_retention):
                del self.replaced[fp]
        return changes

    def _take(self, now: float, samples: list[Sample]) -> tuple[set[str], set[str]]:
        """Update or create the alert of each sample; the fingerprints present, and those of
        them whose condition is only held (not live)."""
        present: set[str] = set()
        held: set[str] = set()
        for sample in samples:
            fp = fingerprint(sample.labels)
            if fp in present:
                continue  # duplicate label set: Prometheus errors; we keep the first
            present.add(fp)
            if not sample.live:
                held.add(fp)
            alert = self.active.get(fp)
            if alert is not None and alert.state is not AlertState.INACTIVE:
                alert.value = sample.value
                alert.annotations = sample.annotations
                alert.threshold = sample.threshold
                alert.expected = sample.expected
                continue
            if alert is not None:  # resolved and retained: kept aside for its resolve message
                self.replaced[fp] = alert
            self.active[fp] = Alert(
                labels=sample.labels,
                annotations=sample.annotations,
                state=AlertState.PENDING,
                value=sample.value,
                active_at=now,
                threshold=sample.threshold,
                expected=sample.expected,
                fingerprint=fp,
            )
        return present, held

    def resolved_aside(self) -> list[Alert]:
        """The resolved alerts kept aside whose fingerprint has no firing or retained alert now
        (a new activation pending, or dropped again)."""
        active = self.active
        return [
            old
            for fp, old in self.replaced.items()
            if fp not in active or active[fp].state is AlertState.PENDING
        ]

    def _cleared(self, now: float, fp: str, alert: Alert) -> bool:
        """Condition absent; returns True when a pending alert was dropped."""
        keep_firing = False
        if alert.state is AlertState.FIRING and self.keep_firing_for > 0:
            if alert.keep_firing_since is None:
                resumed = self.resumed_at
                alert.keep_firing_since = now if resumed is None else min(now, resumed)
                self.keep_changed = True
            keep_firing = not lasted(now, alert.keep_firing_since, self.keep_firing_for)
            alert.kept_until = (
                alert.keep_firing_since + self.keep_firing_for if keep_firing else None
            )
        was_pending = alert.state is AlertState.PENDING
        if was_pending or (
            alert.resolved_at is not None
            and outlasted(now, alert.resolved_at, self.resolved_retention)
        ):
            del self.active[fp]
        if alert.state is not AlertState.INACTIVE and not keep_firing:
            alert.state = AlertState.INACTIVE
            alert.resolved_at = now
        return was_pending

    def _changes(self, before: dict[str, str]) -> list[Transition]:
        out: list[Transition] = []
        for fp, alert in self.active.items():
            previous = before.get(fp, "inactive")
            if alert.status != previous:
                out.append(Transition(alert, alert.status, previous))
        return out
