"""What the outbox stores and receivers are sent: one alert state per notification.

msgspec structs so a notification round-trips through the outbox as JSON unchanged.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AlertInfo(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    threshold: float | None
    expected: float | None
    active_at: float
    fired_at: float | None
    resolved_at: float | None
    value_now: float | None = None
    """A resolved alert's value at the evaluation that resolved it; a kept firing one's value
    at the latest evaluation (None: unknown, or neither)."""
    kept_until: float | None = None
    """A firing alert kept firing after its condition cleared (``keep_firing_for``): when it
    resolves unless the condition returns (None: not kept firing)."""
    upward: bool | None = None
    """Whether a higher value is worse for its detector (None: unknown)."""
    started_at: float | None = None
    """When its trouble began as its texts count it (``Alert.started_at``; None: active_at)."""

    @property
    def status(self) -> Literal["firing", "resolved"]:
        """``resolved`` once it has resolved, else ``firing``."""
        return "firing" if self.resolved_at is None else "resolved"


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    """Idempotency key: receiver, fingerprints, state and evaluation time."""
    receiver: str
    state: Literal["firing", "resolved"]
    """``firing`` while any alert in it fires, else ``resolved`` (each alert: ``status``)."""
    kind: Literal["new", "repeat", "resolved"]
    created: float
    group: dict[str, str]
    alerts: tuple[AlertInfo, ...]


encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(Notification).decode
